#include "eval/amazon.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace dynspec::eval {
namespace {

using Json = nlohmann::json;

struct ItemMeta {
  std::string provider;  // empty: no brand and no publisher
  std::string text;
};

Status LineError(const std::string& path, size_t line, const std::string& field,
                 const std::string& what) {
  std::string msg = path + ":" + std::to_string(line) + ": ";
  if (!field.empty()) msg += "field \"" + field + "\": ";
  return Status::InvalidArgument(msg + what);
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsSpace(s[b])) ++b;
  while (e > b && IsSpace(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// Collapses runs of ASCII whitespace into one space and trims the ends.
std::string CollapseSpaces(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char c : s) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  // Windows-1252 punctuation that some descriptions carry as C1 code points.
  static const uint32_t kCp1252[32] = {
      0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};
  if (cp >= 0x80 && cp <= 0x9F) cp = kCp1252[cp - 0x80];
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes numeric character references and the named entities that occur in the data;
// anything else is left as written.
std::string DecodeEntities(const std::string& s) {
  static const std::unordered_map<std::string, uint32_t> kNamed = {
      {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},
      {"apos", '\''},    {"nbsp", ' '},      {"rsquo", 0x2019}, {"lsquo", 0x2018},
      {"rdquo", 0x201D}, {"ldquo", 0x201C},  {"mdash", 0x2014}, {"ndash", 0x2013},
      {"bull", 0x2022},  {"hellip", 0x2026}, {"eacute", 0xE9},  {"egrave", 0xE8},
      {"ecirc", 0xEA},   {"aacute", 0xE1},   {"agrave", 0xE0},  {"iacute", 0xED},
      {"oacute", 0xF3},  {"uacute", 0xFA},   {"ntilde", 0xF1},  {"ccedil", 0xE7},
      {"auml", 0xE4},    {"ouml", 0xF6},     {"uuml", 0xFC},    {"copy", 0xA9},
      {"reg", 0xAE},     {"trade", 0x2122},  {"deg", 0xB0},     {"frac12", 0xBD}};
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out.push_back(s[i]);
      continue;
    }
    size_t semi = s.find(';', i + 1);
    if (semi == std::string::npos || semi - i > 12) {
      out.push_back('&');
      continue;
    }
    std::string name = s.substr(i + 1, semi - i - 1);
    uint32_t cp = 0;
    bool ok = false;
    if (name.size() > 1 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      const char* b = name.data() + (hex ? 2 : 1);
      const char* e = name.data() + name.size();
      auto [p, ec] = std::from_chars(b, e, cp, hex ? 16 : 10);
      ok = b != e && ec == std::errc() && p == e;
    } else if (auto it = kNamed.find(name); it != kNamed.end()) {
      cp = it->second;
      ok = true;
    }
    if (!ok) {
      out.push_back('&');
      continue;
    }
    AppendUtf8(cp, &out);
    i = semi;
  }
  return out;
}

// Removes HTML tags. Inline tags (<i>, <b>, <span> ...) vanish; other tags (<br>, <p>, <li>
// ...) become a space so that words on either side stay apart. A '<' that does not start a
// tag is kept.
std::string StripTags(const std::string& s) {
  static const std::unordered_set<std::string> kInline = {
      "i", "b", "u", "em", "strong", "span", "a", "font", "sup", "sub", "small", "big", "tt"};
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<' && i + 1 < s.size() &&
        (std::isalpha(static_cast<unsigned char>(s[i + 1])) || s[i + 1] == '/' ||
         s[i + 1] == '!')) {
      size_t close = s.find('>', i + 1);
      if (close != std::string::npos) {
        size_t b = i + 1;
        if (s[b] == '/') ++b;
        size_t e = b;
        while (e < close && std::isalnum(static_cast<unsigned char>(s[e]))) ++e;
        std::string name = s.substr(b, e - b);
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (!kInline.count(name)) out.push_back(' ');
        i = close;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

std::string CleanHtml(const std::string& s) { return CollapseSpaces(DecodeEntities(StripTags(s))); }

// Reads one line (without the trailing newline) of any length. Returns false at end of file;
// sets *error when zlib reports one.
bool GzReadLine(gzFile f, std::string* line, std::string* error) {
  line->clear();
  char buf[1 << 16];
  while (true) {
    if (gzgets(f, buf, sizeof(buf)) == nullptr) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END) *error = msg ? msg : "gzip read error";
      return !line->empty() && error->empty();
    }
    size_t n = std::strlen(buf);
    line->append(buf, n);
    if (n > 0 && buf[n - 1] == '\n') {
      line->pop_back();
      if (!line->empty() && line->back() == '\r') line->pop_back();
      return true;
    }
  }
}

// Extracts the provider and text of one metadata record.
Status ParseMeta(const Json& rec, const std::string& path, size_t line, ItemMeta* out) {
  std::string brand;
  if (rec.contains("brand") && !rec["brand"].is_null()) {
    if (!rec["brand"].is_string()) return LineError(path, line, "brand", "expected a string");
    brand = Trim(rec["brand"].get_ref<const std::string&>());
  }
  if (brand.empty() && rec.contains("details") && rec["details"].is_object()) {
    const Json& details = rec["details"];
    for (const char* key : {"Publisher:", "Publisher"}) {
      if (details.contains(key) && details[key].is_string()) {
        brand = Trim(details[key].get_ref<const std::string&>());
        if (!brand.empty()) break;
      }
    }
  }
  out->provider = brand;

  auto string_list = [&](const char* field, std::vector<std::string>* values) -> Status {
    if (!rec.contains(field) || rec[field].is_null()) return Status::Ok();
    const Json& v = rec[field];
    if (v.is_string()) {
      values->push_back(v.get<std::string>());
      return Status::Ok();
    }
    if (!v.is_array()) return LineError(path, line, field, "expected a list of strings");
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) {
        return LineError(path, line, std::string(field) + "[" + std::to_string(i) + "]",
                         "expected a string");
      }
      values->push_back(v[i].get<std::string>());
    }
    return Status::Ok();
  };
  std::vector<std::string> description, category;
  DYNSPEC_RETURN_IF_ERROR(string_list("description", &description));
  DYNSPEC_RETURN_IF_ERROR(string_list("category", &category));

  std::vector<std::string> parts;
  std::string desc;
  for (const std::string& d : description) {
    std::string clean = CleanHtml(d);
    if (clean.empty()) continue;
    if (!desc.empty()) desc.push_back(' ');
    desc += clean;
  }
  if (!desc.empty()) parts.push_back(desc);
  for (size_t i = 0; i < category.size(); ++i) {
    std::string clean = CleanHtml(category[i]);
    if (i == 0 && clean == "Magazine Subscriptions") continue;
    if (!clean.empty()) parts.push_back(clean);
  }
  std::string text;
  for (const std::string& p : parts) {
    if (!text.empty()) text += " ; ";
    text += p;
  }
  if (text.empty()) text = out->provider;
  out->text = std::move(text);
  return Status::Ok();
}

Status ReadMeta(const std::string& path, std::unordered_map<std::string, ItemMeta>* meta) {
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) return Status::IoError(path + ": cannot open for reading: " + std::strerror(errno));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return Status::IoError(path + ": cannot open gzip file");
  gzbuffer(f, 1 << 17);
  std::string line, error;
  size_t line_no = 0;
  Status status;
  while (GzReadLine(f, &line, &error)) {
    ++line_no;
    if (Trim(line).empty()) continue;
    Json rec;
    try {
      rec = Json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      std::string what = e.what();
      size_t at = what.find("] ");
      status = LineError(path, line_no, "",
                         "invalid JSON: " + (at == std::string::npos ? what : what.substr(at + 2)));
      break;
    }
    if (!rec.is_object()) {
      status = LineError(path, line_no, "", "expected a JSON object");
      break;
    }
    if (!rec.contains("asin") || !rec["asin"].is_string() ||
        rec["asin"].get_ref<const std::string&>().empty()) {
      status = LineError(path, line_no, "asin", "missing or not a non-empty string");
      break;
    }
    std::string asin = rec["asin"].get<std::string>();
    if (meta->count(asin)) continue;  // keep the first record per asin
    ItemMeta m;
    status = ParseMeta(rec, path, line_no, &m);
    if (!status.ok()) break;
    meta->emplace(std::move(asin), std::move(m));
  }
  gzclose(f);
  if (status.ok() && !error.empty()) {
    status = Status::IoError(path + ": gzip read failed after line " + std::to_string(line_no) +
                             ": " + error);
  }
  return status;
}

}  // namespace

Result<std::vector<ReplayEvent>> ConvertAmazon(const std::string& ratings_csv,
                                               const std::string& meta_json_gz,
                                               const AmazonOptions& options, AmazonStats* stats) {
  if (!std::isfinite(options.like_threshold)) {
    return Status::InvalidArgument("AmazonOptions.like_threshold must be finite");
  }
  std::unordered_map<std::string, ItemMeta> meta;
  DYNSPEC_RETURN_IF_ERROR(ReadMeta(meta_json_gz, &meta));

  std::ifstream in(ratings_csv, std::ios::binary);
  if (!in) {
    return Status::IoError(ratings_csv + ": cannot open for reading: " + std::strerror(errno));
  }
  AmazonStats st;
  std::vector<ReplayEvent> events;
  std::unordered_set<std::string> items, providers;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (Trim(line).empty()) continue;
    std::string_view fields[4];
    size_t count = 0, start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      std::string_view f = std::string_view(line).substr(
          start, comma == std::string::npos ? std::string::npos : comma - start);
      if (count < 4) fields[count] = f;
      ++count;
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (count != 4) {
      return LineError(
          ratings_csv, line_no, "",
          "expected 4 fields (asin,user,rating,unix_time), got " + std::to_string(count));
    }
    ++st.ratings_read;
    if (fields[0].empty()) return LineError(ratings_csv, line_no, "asin", "empty");
    double rating = 0;
    {
      auto [p, ec] = std::from_chars(fields[2].data(), fields[2].data() + fields[2].size(), rating);
      if (fields[2].empty() || ec != std::errc() || p != fields[2].data() + fields[2].size() ||
          !std::isfinite(rating)) {
        return LineError(ratings_csv, line_no, "rating",
                         "expected a number, got \"" + std::string(fields[2]) + "\"");
      }
    }
    int64_t ts = 0;
    {
      auto [p, ec] = std::from_chars(fields[3].data(), fields[3].data() + fields[3].size(), ts);
      if (fields[3].empty() || ec != std::errc() || p != fields[3].data() + fields[3].size()) {
        return LineError(ratings_csv, line_no, "unix_time",
                         "expected an integer, got \"" + std::string(fields[3]) + "\"");
      }
    }
    auto it = meta.find(std::string(fields[0]));
    if (it == meta.end()) {
      ++st.dropped_no_meta;
      continue;
    }
    if (it->second.provider.empty()) {
      ++st.dropped_no_brand;
      continue;
    }
    ReplayEvent e;
    e.timestamp = ts;
    e.user = std::string(fields[1]);
    e.item = it->first;
    e.provider = it->second.provider;
    e.text = it->second.text;
    e.responses["like"] = rating >= options.like_threshold ? 1.0 : 0.0;
    items.insert(e.item);
    providers.insert(e.provider);
    events.push_back(std::move(e));
  }
  if (in.bad()) return Status::IoError(ratings_csv + ": read failed");
  // Stable sort by time through an index, so the (large) events move only once.
  std::vector<size_t> order(events.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return events[a].timestamp < events[b].timestamp; });
  std::vector<ReplayEvent> sorted;
  sorted.reserve(events.size());
  for (size_t i : order) sorted.push_back(std::move(events[i]));
  events = std::move(sorted);
  st.ratings_kept = events.size();
  st.items = items.size();
  st.providers = providers.size();
  if (stats != nullptr) *stats = st;
  return events;
}

}  // namespace dynspec::eval
