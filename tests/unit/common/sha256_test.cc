#include "common/sha256.h"

#include <Poco/SHA2Engine.h>

#include <catch2/catch.hpp>
#include <string>

using popvault::Sha256;

TEST_CASE("sha256: FIPS 180-2 test vectors") {
  CHECK(Sha256::Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256::Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256::Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("sha256: streaming in uneven pieces equals one shot and Poco's digest") {
  std::string data(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 7));
  Sha256 streamed;
  for (size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 % 70001 + 1) {
    streamed.Update(data.data() + at, std::min(step, data.size() - at));
  }
  Poco::SHA2Engine poco(Poco::SHA2Engine::SHA_256);
  poco.update(data);
  const std::string expected = Poco::DigestEngine::digestToHex(poco.digest());
  CHECK(streamed.FinishHex() == expected);
  CHECK(Sha256::Hex(data) == expected);
}
