#include "s3_xml.h"

#include <Poco/AutoPtr.h>
#include <Poco/DOM/DOMParser.h>
#include <Poco/DOM/Document.h>
#include <Poco/DOM/Element.h>
#include <Poco/DOM/Node.h>
#include <Poco/Exception.h>
#include <Poco/SAX/XMLReader.h>

namespace popvault::s3 {
namespace {

using Poco::XML::Element;
using Poco::XML::Node;

// The parsed document, or null when `xml` is not well-formed.
Poco::AutoPtr<Poco::XML::Document> Parse(std::string_view xml) {
  Poco::XML::DOMParser parser;
  parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_GENERAL_ENTITIES, false);
  parser.setFeature(Poco::XML::XMLReader::FEATURE_EXTERNAL_PARAMETER_ENTITIES, false);
  try {
    return parser.parseMemory(xml.data(), xml.size());
  } catch (const Poco::Exception&) {
    return nullptr;
  }
}

Element* Root(Poco::XML::Document* doc, const std::string& name) {
  if (doc == nullptr) return nullptr;
  Element* root = doc->documentElement();
  return root != nullptr && root->localName() == name ? root : nullptr;
}

// Child elements of `parent` named `name`, in document order.
std::vector<Element*> Children(Element* parent, const std::string& name) {
  std::vector<Element*> out;
  for (Node* n = parent->firstChild(); n != nullptr; n = n->nextSibling()) {
    if (n->nodeType() == Node::ELEMENT_NODE && n->localName() == name) {
      out.push_back(static_cast<Element*>(n));
    }
  }
  return out;
}

std::string ChildText(Element* parent, const std::string& name) {
  const std::vector<Element*> found = Children(parent, name);
  return found.empty() ? std::string() : found.front()->innerText();
}

std::string EscapeXml(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace

bool ParseError(std::string_view xml, S3Error* error) {
  Poco::AutoPtr<Poco::XML::Document> doc = Parse(xml);
  Element* root = Root(doc, "Error");
  if (root == nullptr) return false;
  error->code = ChildText(root, "Code");
  error->message = ChildText(root, "Message");
  error->request_id = ChildText(root, "RequestId");
  return true;
}

Status ParseListPage(std::string_view xml, ListPage* page) {
  Poco::AutoPtr<Poco::XML::Document> doc = Parse(xml);
  Element* root = Root(doc, "ListBucketResult");
  if (root == nullptr) return Status::Protocol("ListObjectsV2: not a <ListBucketResult> document");
  page->keys.clear();
  for (Element* contents : Children(root, "Contents")) {
    const std::vector<Element*> key = Children(contents, "Key");
    if (key.size() != 1) return Status::Protocol("ListObjectsV2: <Contents> without one <Key>");
    page->keys.push_back(key.front()->innerText());
  }
  page->truncated = ChildText(root, "IsTruncated") == "true";
  page->next_token = ChildText(root, "NextContinuationToken");
  if (page->truncated && page->next_token.empty()) {
    return Status::Protocol("ListObjectsV2: truncated page without <NextContinuationToken>");
  }
  return Status::OK();
}

Status ParseUploadId(std::string_view xml, std::string* upload_id) {
  Poco::AutoPtr<Poco::XML::Document> doc = Parse(xml);
  Element* root = Root(doc, "InitiateMultipartUploadResult");
  if (root != nullptr) *upload_id = ChildText(root, "UploadId");
  if (root == nullptr || upload_id->empty()) {
    return Status::Protocol("CreateMultipartUpload: no <UploadId> in the response");
  }
  return Status::OK();
}

std::string CompleteMultipartBody(const std::vector<std::string>& etags) {
  std::string body = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < etags.size(); ++i) {
    body += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
            EscapeXml(etags[i]) + "</ETag></Part>";
  }
  return body + "</CompleteMultipartUpload>";
}

}  // namespace popvault::s3
