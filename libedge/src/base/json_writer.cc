#include "edge/json_writer.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "edge/ids.h"

namespace edge {
namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

void AppendJsonString(std::string& out, absl::string_view value) {
  out.reserve(out.size() + value.size() + 2);
  out.push_back('"');
  // Bytes that need no escaping (printable ASCII other than '"' and '\\',
  // and valid UTF-8 sequences) are copied in runs, not one by one.
  size_t run = 0;
  size_t i = 0;
  const auto flush = [&](size_t end) {
    if (end > run) out.append(value.data() + run, end - run);
  };
  while (i < value.size()) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      size_t len = Utf8SequenceLength(value, i);
      if (len != 0) {
        i += len;
        continue;
      }
      flush(i);
      out.append("\xEF\xBF\xBD");  // U+FFFD
      run = ++i;
      continue;
    }
    flush(i);
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
    run = ++i;
  }
  flush(i);
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
