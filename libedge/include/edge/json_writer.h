// A small streaming JSON object writer for the events of contract §5.
//
// Events need exact field names, JSON numbers for int64 (protobuf's JSON
// mapping would quote them) and `false` values printed, so they are written
// directly. Strings are escaped per RFC 8259; invalid UTF-8 is replaced by
// U+FFFD so the output is always valid JSON.
#ifndef EDGE_JSON_WRITER_H_
#define EDGE_JSON_WRITER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace edge {

// Appends `value` as a quoted, escaped JSON string.
void AppendJsonString(std::string& out, absl::string_view value);

class JsonWriter {
 public:
  // Appends to `out`; opens an object.
  explicit JsonWriter(std::string& out);

  JsonWriter& Field(absl::string_view name, absl::string_view value);
  JsonWriter& Field(absl::string_view name, const char* value) {
    return Field(name, absl::string_view(value));
  }
  JsonWriter& Field(absl::string_view name, int64_t value);
  JsonWriter& Field(absl::string_view name, bool value);
  // `json` must already be valid JSON (an object, array, ...).
  JsonWriter& RawField(absl::string_view name, absl::string_view json);

  // Nested containers: BeginArray / EndArray, BeginObject / EndObject.
  JsonWriter& BeginArray(absl::string_view name);
  JsonWriter& ArrayString(absl::string_view value);
  JsonWriter& EndArray();
  JsonWriter& BeginObject(absl::string_view name);  // "" inside an array
  JsonWriter& EndObject();

  // Closes the outer object.
  void Close();

 private:
  void Name(absl::string_view name);
  void Comma();

  std::string& out_;
  bool first_ = true;
};

}  // namespace edge

#endif  // EDGE_JSON_WRITER_H_
