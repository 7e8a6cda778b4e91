// ArchiveRecord <-> Poco JSON object, for documents that embed a record (the
// ledger's values). RecordToJson/RecordFromJson are these plus (de)serializing.
#pragma once

#include <Poco/JSON/Object.h>

#include "archive/record.h"
#include "popvault/status.h"

namespace popvault {

Poco::JSON::Object::Ptr RecordToJsonObject(const ArchiveRecord& record);

// Same checks as RecordFromJson. Never throws.
Status RecordFromJsonObject(const Poco::JSON::Object& object, ArchiveRecord* record);

}  // namespace popvault
