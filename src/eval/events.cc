#include "eval/events.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_set>
#include <utility>

namespace dynspec::eval {
namespace {

using Json = nlohmann::ordered_json;

// "path:line: field "name": what"
Status FieldError(const std::string& path, size_t line, const std::string& field,
                  const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": field \"" + field +
                                 "\": " + what);
}

Status LineError(const std::string& path, size_t line, const std::string& what) {
  return Status::InvalidArgument(path + ":" + std::to_string(line) + ": " + what);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot open for reading: " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return Status::IoError(path + ": read failed");
  return buf.str();
}

// Checks the rules that span events: timestamps never decrease, and an item's first event
// names its provider and has content. `where(i)` says how to name event i in messages.
template <typename Where>
Status ValidateSequence(const std::vector<ReplayEvent>& events, Where where) {
  std::unordered_set<std::string> seen;
  for (size_t i = 0; i < events.size(); ++i) {
    const ReplayEvent& e = events[i];
    if (i > 0 && e.timestamp < events[i - 1].timestamp) {
      return Status::InvalidArgument(where(i) + ": field \"ts\": timestamp " +
                                     std::to_string(e.timestamp) + " is before the previous " +
                                     std::to_string(events[i - 1].timestamp) +
                                     " (events must be in time order)");
    }
    if (seen.insert(e.item).second) {
      if (e.provider.empty()) {
        return Status::InvalidArgument(where(i) +
                                       ": field \"provider\": required on the first "
                                       "event of item \"" +
                                       e.item + "\"");
      }
      if (e.text.empty() && e.vector.empty()) {
        return Status::InvalidArgument(where(i) +
                                       ": field \"text\": required (or \"vector\") on the first "
                                       "event of item \"" +
                                       e.item + "\"");
      }
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// JSON lines

// Non-finite numbers are not JSON, but some writers emit them (Python's json.dumps writes
// NaN and Infinity) and huge literals such as 1e999 overflow. To report such a value by its
// field, the line is parsed a second time with each of them replaced by this marker string.
constexpr const char* kNonFiniteMarker = R"(\u0001dynspec:non-finite\u0001)";  // JSON escapes

// Returns `line` with NaN, Infinity, -Infinity and overflowing number literals outside of
// strings replaced by the marker; *replaced says whether there was any.
std::string MarkNonFinite(const std::string& line, bool* replaced) {
  *replaced = false;
  std::string out;
  out.reserve(line.size() + 32);
  const size_t n = line.size();
  size_t i = 0;
  while (i < n) {
    const char c = line[i];
    if (c == '"') {  // copy the string literal as is
      size_t j = i + 1;
      while (j < n && line[j] != '"') j += line[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, n);
      out.append(line, i, j - i);
      i = j;
      continue;
    }
    size_t len = 0;
    if (line.compare(i, 3, "NaN") == 0) {
      len = 3;
    } else if (line.compare(i, 8, "Infinity") == 0) {
      len = 8;
    } else if (line.compare(i, 9, "-Infinity") == 0) {
      len = 9;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      size_t j = i + 1;
      while (j < n && (std::isdigit(static_cast<unsigned char>(line[j])) || line[j] == '.' ||
                       line[j] == 'e' || line[j] == 'E' || line[j] == '+' || line[j] == '-')) {
        ++j;
      }
      const std::string number = line.substr(i, j - i);
      char* end = nullptr;
      const double d = std::strtod(number.c_str(), &end);
      if (end == number.c_str() + number.size() && std::isinf(d)) len = j - i;
      if (len == 0) {
        out.append(number);
        i = j;
        continue;
      }
    }
    if (len > 0) {
      out += '"';
      out += kNonFiniteMarker;
      out += '"';
      i += len;
      *replaced = true;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

class JsonlLineParser {
 public:
  JsonlLineParser(const std::string& path, size_t line) : path_(path), line_(line) {}

  Status Parse(const std::string& text, ReplayEvent* out) {
    Json doc;
    std::string duplicate;
    std::vector<std::set<std::string>> keys;
    auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t ev, Json& parsed) {
      using E = nlohmann::json::parse_event_t;
      if (ev == E::object_start) {
        keys.emplace_back();
      } else if (ev == E::object_end) {
        if (!keys.empty()) keys.pop_back();
      } else if (ev == E::key && !keys.empty() && parsed.is_string()) {
        const std::string& k = parsed.get_ref<const std::string&>();
        if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
      }
      return true;
    };
    try {
      doc = Json::parse(text, callback);
    } catch (const nlohmann::json::exception& e) {
      // Retry with non-finite numbers marked, so the error can name their field.
      bool replaced = false;
      const std::string marked = MarkNonFinite(text, &replaced);
      bool reparsed = false;
      if (replaced) {
        keys.clear();
        duplicate.clear();
        try {
          doc = Json::parse(marked, callback);
          reparsed = true;
          marked_ = true;
        } catch (const nlohmann::json::exception&) {
        }
      }
      if (!reparsed) {
        std::string what = e.what();
        size_t at = what.find("parse error");
        return LineError(path_, line_,
                         "invalid JSON: " + (at == std::string::npos ? what : what.substr(at)));
      }
    }
    if (!duplicate.empty()) return FieldError(path_, line_, duplicate, "duplicate key");
    if (!doc.is_object()) return LineError(path_, line_, "expected a JSON object");

    ReplayEvent e;
    bool has_ts = false;
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      const std::string& key = it.key();
      Json& v = it.value();
      if (key == "ts") {
        DYNSPEC_RETURN_IF_ERROR(GetInt(v, key, &e.timestamp));
        has_ts = true;
      } else if (key == "user") {
        DYNSPEC_RETURN_IF_ERROR(GetString(v, key, &e.user));
      } else if (key == "item") {
        DYNSPEC_RETURN_IF_ERROR(GetString(v, key, &e.item));
      } else if (key == "provider") {
        DYNSPEC_RETURN_IF_ERROR(GetString(v, key, &e.provider));
      } else if (key == "text") {
        DYNSPEC_RETURN_IF_ERROR(GetString(v, key, &e.text));
      } else if (key == "vector") {
        DYNSPEC_RETURN_IF_ERROR(GetFloats(v, key, &e.vector));
      } else if (key == "responses") {
        DYNSPEC_RETURN_IF_ERROR(GetResponses(v, &e.responses));
      } else if (key == "context") {
        DYNSPEC_RETURN_IF_ERROR(GetContext(v, &e.context));
      } else {
        return FieldError(path_, line_, key, "unknown key");
      }
    }
    if (!has_ts) return FieldError(path_, line_, "ts", "missing");
    if (e.item.empty()) {
      return FieldError(path_, line_, "item", doc.contains("item") ? "empty" : "missing");
    }
    if (e.responses.empty()) {
      return FieldError(
          path_, line_, "responses",
          doc.contains("responses") ? "empty (at least one head is required)" : "missing");
    }
    *out = std::move(e);
    return Status::Ok();
  }

 private:
  Status GetInt(const Json& v, const std::string& field, int64_t* out) {
    if (v.is_number_integer() && !v.is_number_unsigned()) {
      *out = v.get<int64_t>();
      return Status::Ok();
    }
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return FieldError(path_, line_, field, "integer out of range");
      }
      *out = static_cast<int64_t>(u);
      return Status::Ok();
    }
    return FieldError(path_, line_, field, std::string("expected an integer, got ") + TypeName(v));
  }

  Status GetString(Json& v, const std::string& field, std::string* out) {
    if (!v.is_string() || IsNonFiniteMarker(v)) {
      return FieldError(path_, line_, field, std::string("expected a string, got ") + TypeName(v));
    }
    *out = std::move(v.get_ref<std::string&>());
    return Status::Ok();
  }

  Status GetNumber(const Json& v, const std::string& field, double* out) {
    if (IsNonFiniteMarker(v)) {
      return FieldError(path_, line_, field,
                        "not a finite number (NaN, Infinity and out-of-range values are not "
                        "allowed)");
    }
    if (!v.is_number()) {
      return FieldError(path_, line_, field, std::string("expected a number, got ") + TypeName(v));
    }
    double d = v.get<double>();
    if (!std::isfinite(d)) return FieldError(path_, line_, field, "not a finite number");
    *out = d;
    return Status::Ok();
  }

  Status GetFloat(const Json& v, const std::string& field, float* out) {
    double d = 0;
    DYNSPEC_RETURN_IF_ERROR(GetNumber(v, field, &d));
    if (std::fabs(d) > std::numeric_limits<float>::max()) {
      return FieldError(path_, line_, field, "out of float range");
    }
    *out = static_cast<float>(d);
    return Status::Ok();
  }

  Status GetFloats(const Json& v, const std::string& field, std::vector<float>* out) {
    if (!v.is_array()) {
      return FieldError(path_, line_, field,
                        std::string("expected an array of numbers, got ") + TypeName(v));
    }
    out->clear();
    out->reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      float f = 0;
      DYNSPEC_RETURN_IF_ERROR(GetFloat(v[i], field + "[" + std::to_string(i) + "]", &f));
      out->push_back(f);
    }
    return Status::Ok();
  }

  Status GetResponses(const Json& v, Responses* out) {
    if (!v.is_object()) {
      return FieldError(
          path_, line_, "responses",
          std::string("expected an object of head name -> number, got ") + TypeName(v));
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key().empty()) return FieldError(path_, line_, "responses", "empty head name");
      double d = 0;
      DYNSPEC_RETURN_IF_ERROR(GetNumber(it.value(), "responses." + it.key(), &d));
      (*out)[it.key()] = d;
    }
    return Status::Ok();
  }

  Status GetContext(const Json& v, Context* out) {
    if (!v.is_object()) {
      return FieldError(path_, line_, "context",
                        std::string("expected an object, got ") + TypeName(v));
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (it.key() == "dense") {
        DYNSPEC_RETURN_IF_ERROR(GetFloats(it.value(), "context.dense", &out->dense));
      } else if (it.key() == "sparse") {
        const Json& s = it.value();
        if (!s.is_object()) {
          return FieldError(
              path_, line_, "context.sparse",
              std::string("expected an object of name -> number, got ") + TypeName(s));
        }
        for (auto jt = s.begin(); jt != s.end(); ++jt) {
          if (jt.key().empty()) {
            return FieldError(path_, line_, "context.sparse", "empty feature name");
          }
          float f = 0;
          DYNSPEC_RETURN_IF_ERROR(GetFloat(jt.value(), "context.sparse." + jt.key(), &f));
          out->sparse.emplace_back(jt.key(), f);
        }
      } else {
        return FieldError(path_, line_, "context." + it.key(), "unknown key");
      }
    }
    return Status::Ok();
  }

  // True for a value that MarkNonFinite put in place of a non-finite number.
  bool IsNonFiniteMarker(const Json& v) const {
    return marked_ && v.is_string() &&
           v.get_ref<const std::string&>() == "\001dynspec:non-finite\001";
  }

  const char* TypeName(const Json& v) const {
    if (IsNonFiniteMarker(v)) return "a non-finite number";
    if (v.is_number_float()) return "a non-integer number";
    if (v.is_number()) return "a number";
    return v.type_name();
  }

  const std::string& path_;
  size_t line_;
  bool marked_ = false;  // the line was re-parsed with non-finite numbers marked
};

bool IsBlank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180)

struct CsvRecord {
  size_t line = 0;  // physical line the record starts on, 1-based
  std::vector<std::string> fields;
};

// Splits `data` into records. Accepts LF and CRLF line ends and quoted fields spanning lines.
Status ParseCsv(const std::string& path, const std::string& data, std::vector<CsvRecord>* out) {
  size_t i = 0;
  size_t line = 1;
  if (data.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;
  const size_t n = data.size();
  while (i < n) {
    CsvRecord rec;
    rec.line = line;
    std::string field;
    bool done = false;
    while (!done) {
      field.clear();
      if (i < n && data[i] == '"') {
        // Quoted field.
        size_t open_line = line;
        ++i;
        bool closed = false;
        while (i < n) {
          char c = data[i];
          if (c == '"') {
            if (i + 1 < n && data[i + 1] == '"') {
              field.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          if (c == '\n') ++line;
          field.push_back(c);
          ++i;
        }
        if (!closed) {
          return LineError(path, open_line, "unterminated quoted field (missing closing \")");
        }
        if (i < n && data[i] != ',' && data[i] != '\n' &&
            !(data[i] == '\r' && i + 1 < n && data[i + 1] == '\n') &&
            !(data[i] == '\r' && i + 1 == n)) {
          return LineError(path, line,
                           "unexpected character after a closing quote (field " +
                               std::to_string(rec.fields.size() + 1) + ")");
        }
      } else {
        while (i < n && data[i] != ',' && data[i] != '\n' &&
               !(data[i] == '\r' && (i + 1 == n || data[i + 1] == '\n'))) {
          if (data[i] == '"') {
            return LineError(path, line,
                             "quote inside an unquoted field (field " +
                                 std::to_string(rec.fields.size() + 1) + ")");
          }
          field.push_back(data[i]);
          ++i;
        }
      }
      rec.fields.push_back(field);
      if (i >= n) {
        done = true;
      } else if (data[i] == ',') {
        ++i;
      } else {  // end of record
        if (data[i] == '\r') ++i;
        if (i < n && data[i] == '\n') ++i;
        ++line;
        done = true;
      }
    }
    // A line with nothing on it is not a record.
    if (!(rec.fields.size() == 1 && rec.fields[0].empty())) out->push_back(std::move(rec));
  }
  return Status::Ok();
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool ParseInt64(const std::string& s, int64_t* out) {
  std::string t = Trim(s);
  if (t.empty()) return false;
  const char* b = t.data();
  if (*b == '+') ++b;
  auto [p, ec] = std::from_chars(b, t.data() + t.size(), *out);
  return ec == std::errc() && p == t.data() + t.size();
}

// Finite decimal number; rejects nan/inf spellings and trailing garbage.
bool ParseFiniteDouble(const std::string& s, double* out) {
  std::string t = Trim(s);
  if (t.empty()) return false;
  const char* b = t.data();
  if (*b == '+') ++b;
  auto [p, ec] = std::from_chars(b, t.data() + t.size(), *out);
  return ec == std::errc() && p == t.data() + t.size() && std::isfinite(*out);
}

// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped,
// other bytes (valid UTF-8, checked before writing) copied as they are.
void AppendJsonString(std::string* out, const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        *out += "\\u00";
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xF]);
    }
  }
  out->append(s, run, std::string::npos);
  out->push_back('"');
}

template <typename T>
void AppendNumber(std::string* out, T v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, p);
}

// Strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF), as JSON
// readers require.
bool ValidUtf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status CheckEventForWrite(const ReplayEvent& e, size_t index) {
  auto err = [&](const std::string& field, const std::string& what) {
    return Status::InvalidArgument("event " + std::to_string(index) + ": field \"" + field +
                                   "\": " + what);
  };
  if (e.item.empty()) return err("item", "empty");
  if (e.responses.empty()) return err("responses", "empty (at least one head is required)");
  for (const auto& [name, value] : e.responses) {
    if (name.empty()) return err("responses", "empty head name");
    if (!std::isfinite(value)) return err("responses." + name, "not a finite number");
  }
  for (size_t i = 0; i < e.vector.size(); ++i) {
    if (!std::isfinite(e.vector[i])) {
      return err("vector[" + std::to_string(i) + "]", "not a finite number");
    }
  }
  for (size_t i = 0; i < e.context.dense.size(); ++i) {
    if (!std::isfinite(e.context.dense[i])) {
      return err("context.dense[" + std::to_string(i) + "]", "not a finite number");
    }
  }
  std::set<std::string> sparse_names;
  for (const auto& [name, value] : e.context.sparse) {
    if (name.empty()) return err("context.sparse", "empty feature name");
    if (!sparse_names.insert(name).second) {
      return err("context.sparse." + name, "duplicate feature name");
    }
    if (!std::isfinite(value)) return err("context.sparse." + name, "not a finite number");
  }
  const std::pair<const char*, const std::string*> strings[] = {
      {"user", &e.user}, {"item", &e.item}, {"provider", &e.provider}, {"text", &e.text}};
  for (const auto& [field, value] : strings) {
    if (!ValidUtf8(*value)) return err(field, "not valid UTF-8");
  }
  for (const auto& [name, value] : e.responses) {
    if (!ValidUtf8(name)) return err("responses", "head name is not valid UTF-8");
  }
  for (const auto& [name, value] : e.context.sparse) {
    if (!ValidUtf8(name)) return err("context.sparse", "feature name is not valid UTF-8");
  }
  return Status::Ok();
}

void AppendFloatArray(std::string* out, const std::vector<float>& v) {
  out->push_back('[');
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out->push_back(',');
    AppendNumber(out, v[i]);
  }
  out->push_back(']');
}

std::string EventToJsonLine(const ReplayEvent& e) {
  std::string s = "{\"ts\":";
  AppendNumber(&s, e.timestamp);
  auto add_string = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    s += ",\"";
    s += key;
    s += "\":";
    AppendJsonString(&s, value);
  };
  add_string("user", e.user);
  add_string("item", e.item);
  add_string("provider", e.provider);
  add_string("text", e.text);
  if (!e.vector.empty()) {
    s += ",\"vector\":";
    AppendFloatArray(&s, e.vector);
  }
  s += ",\"responses\":{";
  bool first = true;
  for (const auto& [name, value] : e.responses) {
    if (!first) s.push_back(',');
    first = false;
    AppendJsonString(&s, name);
    s.push_back(':');
    AppendNumber(&s, value);
  }
  s.push_back('}');
  if (!e.context.dense.empty() || !e.context.sparse.empty()) {
    s += ",\"context\":{";
    bool need_comma = false;
    if (!e.context.dense.empty()) {
      s += "\"dense\":";
      AppendFloatArray(&s, e.context.dense);
      need_comma = true;
    }
    if (!e.context.sparse.empty()) {
      if (need_comma) s.push_back(',');
      s += "\"sparse\":{";
      for (size_t i = 0; i < e.context.sparse.size(); ++i) {
        if (i) s.push_back(',');
        AppendJsonString(&s, e.context.sparse[i].first);
        s.push_back(':');
        AppendNumber(&s, e.context.sparse[i].second);
      }
      s.push_back('}');
    }
    s.push_back('}');
  }
  s += "}\n";
  return s;
}

}  // namespace

Result<std::vector<ReplayEvent>> ReadEvents(const std::string& path) {
  std::string lower = Lower(path);
  if (EndsWith(lower, ".jsonl")) return ReadEventsJsonl(path);
  if (EndsWith(lower, ".csv")) return ReadEventsCsv(path);
  return Status::InvalidArgument(path + ": unknown event file extension (expected .jsonl or .csv)");
}

Result<std::vector<ReplayEvent>> ReadEventsJsonl(const std::string& path) {
  DYNSPEC_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(path));
  std::vector<ReplayEvent> events;
  std::vector<size_t> lines;  // line number of each event, for the sequence checks
  size_t pos = 0;
  size_t line_no = 0;
  if (data.compare(0, 3, "\xEF\xBB\xBF") == 0) pos = 3;
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::string line = data.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (IsBlank(line)) continue;
    ReplayEvent e;
    JsonlLineParser parser(path, line_no);
    DYNSPEC_RETURN_IF_ERROR(parser.Parse(line, &e));
    events.push_back(std::move(e));
    lines.push_back(line_no);
  }
  DYNSPEC_RETURN_IF_ERROR(
      ValidateSequence(events, [&](size_t i) { return path + ":" + std::to_string(lines[i]); }));
  return events;
}

Result<std::vector<ReplayEvent>> ReadEventsCsv(const std::string& path) {
  DYNSPEC_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(path));
  std::vector<CsvRecord> records;
  DYNSPEC_RETURN_IF_ERROR(ParseCsv(path, data, &records));
  if (records.empty()) return LineError(path, 1, "missing header row");

  const CsvRecord& header = records[0];
  int ts_col = -1, user_col = -1, item_col = -1, provider_col = -1, text_col = -1;
  std::vector<std::pair<int, std::string>> heads;
  std::set<std::string> names;
  for (size_t c = 0; c < header.fields.size(); ++c) {
    const std::string& name = header.fields[c];
    if (name.empty()) {
      return LineError(path, header.line,
                       "header: column " + std::to_string(c + 1) + " has no name");
    }
    if (!names.insert(name).second) {
      return FieldError(path, header.line, name, "duplicate column in header");
    }
    int col = static_cast<int>(c);
    if (name == "ts") {
      ts_col = col;
    } else if (name == "user") {
      user_col = col;
    } else if (name == "item") {
      item_col = col;
    } else if (name == "provider") {
      provider_col = col;
    } else if (name == "text") {
      text_col = col;
    } else {
      heads.emplace_back(col, name);
    }
  }
  if (ts_col < 0) return FieldError(path, header.line, "ts", "header has no \"ts\" column");
  if (item_col < 0) return FieldError(path, header.line, "item", "header has no \"item\" column");
  if (heads.empty()) {
    return FieldError(path, header.line, "responses",
                      "header has no response column (any column other than "
                      "ts,user,item,provider,text)");
  }

  std::vector<ReplayEvent> events;
  events.reserve(records.size() - 1);
  for (size_t r = 1; r < records.size(); ++r) {
    const CsvRecord& rec = records[r];
    if (rec.fields.size() != header.fields.size()) {
      return LineError(path, rec.line,
                       "expected " + std::to_string(header.fields.size()) + " fields, got " +
                           std::to_string(rec.fields.size()));
    }
    ReplayEvent e;
    if (!ParseInt64(rec.fields[ts_col], &e.timestamp)) {
      return FieldError(path, rec.line, "ts",
                        "expected an integer, got \"" + rec.fields[ts_col] + "\"");
    }
    e.item = rec.fields[item_col];
    if (e.item.empty()) return FieldError(path, rec.line, "item", "empty");
    if (user_col >= 0) e.user = rec.fields[user_col];
    if (provider_col >= 0) e.provider = rec.fields[provider_col];
    if (text_col >= 0) e.text = rec.fields[text_col];
    for (const auto& [col, name] : heads) {
      const std::string& cell = rec.fields[col];
      if (Trim(cell).empty()) continue;  // not observed
      double v = 0;
      if (!ParseFiniteDouble(cell, &v)) {
        return FieldError(path, rec.line, name, "expected a finite number, got \"" + cell + "\"");
      }
      e.responses[name] = v;
    }
    if (e.responses.empty()) {
      return FieldError(path, rec.line, "responses", "no response observed in this row");
    }
    events.push_back(std::move(e));
  }
  DYNSPEC_RETURN_IF_ERROR(ValidateSequence(
      events, [&](size_t i) { return path + ":" + std::to_string(records[i + 1].line); }));
  return events;
}

Status WriteEventsJsonl(const std::string& path, const std::vector<ReplayEvent>& events) {
  for (size_t i = 0; i < events.size(); ++i) {
    DYNSPEC_RETURN_IF_ERROR(CheckEventForWrite(events[i], i));
  }
  DYNSPEC_RETURN_IF_ERROR(
      ValidateSequence(events, [](size_t i) { return "event " + std::to_string(i); }));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IoError(path + ": cannot open for writing: " + std::strerror(errno));
  for (const ReplayEvent& e : events) {
    std::string line = EventToJsonLine(e);
    out.write(line.data(), static_cast<std::streamsize>(line.size()));
  }
  out.flush();
  if (!out) return Status::IoError(path + ": write failed");
  return Status::Ok();
}

}  // namespace dynspec::eval
