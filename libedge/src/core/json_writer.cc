#include "core/json_writer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/ids.h"

namespace edge {
namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

void AppendJsonString(std::string& out, absl::string_view value) {
  out.push_back('"');
  size_t i = 0;
  while (i < value.size()) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(value, i);
      if (len == 0) {
        out.append("\xEF\xBF\xBD");  // U+FFFD
        ++i;
      } else {
        out.append(value.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

JsonWriter::JsonWriter(std::string& out) : out_(out) { out_.push_back('{'); }

void JsonWriter::Comma() {
  if (!first_) out_.push_back(',');
  first_ = false;
}

void JsonWriter::Name(absl::string_view name) {
  Comma();
  if (!name.empty()) {
    AppendJsonString(out_, name);
    out_.push_back(':');
  }
}

JsonWriter& JsonWriter::Field(absl::string_view name, absl::string_view value) {
  Name(name);
  AppendJsonString(out_, value);
  return *this;
}

JsonWriter& JsonWriter::Field(absl::string_view name, int64_t value) {
  Name(name);
  absl::StrAppend(&out_, value);
  return *this;
}

JsonWriter& JsonWriter::Field(absl::string_view name, bool value) {
  Name(name);
  out_.append(value ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::RawField(absl::string_view name, absl::string_view json) {
  Name(name);
  out_.append(json.data(), json.size());
  return *this;
}

JsonWriter& JsonWriter::BeginArray(absl::string_view name) {
  Name(name);
  out_.push_back('[');
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::ArrayString(absl::string_view value) {
  Comma();
  AppendJsonString(out_, value);
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_.push_back(']');
  first_ = false;
  return *this;
}

JsonWriter& JsonWriter::BeginObject(absl::string_view name) {
  Name(name);
  out_.push_back('{');
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_.push_back('}');
  first_ = false;
  return *this;
}

void JsonWriter::Close() { out_.push_back('}'); }

}  // namespace edge
