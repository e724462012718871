// CLIP's byte-level BPE tokenizer; see clip_tokenizer.h for what is reproduced and what is
// approximated, and docs/embedding.md for the reasoning.
#include "embed/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <queue>

namespace dynspec {
namespace {

// Text is processed as "units": a Unicode code point, or a byte that was not part of valid
// UTF-8 with this flag set. Keeping such bytes (instead of replacing them) is what lets any
// byte string encode and decode back.
using Unit = uint32_t;
constexpr Unit kRawByte = 0x80000000u;

enum CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct ClassRange {
  uint32_t first, last;
  CharClass cls;
};
struct LowerRange {
  uint32_t first, last, stride;
  int32_t delta;
};

#include "embed/clip_unicode_tables.inc"

// Strict UTF-8: overlong forms, surrogates and values above U+10FFFF are invalid, and each
// byte of an invalid sequence becomes a raw unit of its own.
std::vector<Unit> DecodeUtf8(std::string_view s) {
  std::vector<Unit> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int len = 0;
    uint32_t cp = 0, min = 0;
    if ((b0 & 0xE0) == 0xC0) {
      len = 2, cp = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, cp = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, cp = b0 & 0x07, min = 0x10000;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.push_back(cp);
      i += len;
    } else {
      out.push_back(kRawByte | b0);
      ++i;
    }
  }
  return out;
}

void AppendUnit(Unit u, std::string* out) {
  if (u & kRawByte) {
    out->push_back(static_cast<char>(u & 0xFF));
  } else if (u < 0x80) {
    out->push_back(static_cast<char>(u));
  } else if (u < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (u >> 6)));
    out->push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else if (u < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (u >> 12)));
    out->push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (u & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (u >> 18)));
    out->push_back(static_cast<char>(0x80 | ((u >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((u >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (u & 0x3F)));
  }
}

std::string EncodeUtf8(const std::vector<Unit>& units) {
  std::string out;
  out.reserve(units.size());
  for (Unit u : units) AppendUnit(u, &out);
  return out;
}

// Raw bytes count as "other": CLIP would have seen U+FFFD there, which is a symbol.
CharClass Classify(Unit u) {
  if (u < 0x80) {
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return kLetter;
    if (u >= '0' && u <= '9') return kNumber;
    if (u == ' ' || (u >= '\t' && u <= '\r')) return kSpace;
    return kOther;
  }
  if (u & kRawByte) return kOther;
  auto it = std::upper_bound(std::begin(kClassRanges), std::end(kClassRanges), u,
                             [](uint32_t v, const ClassRange& r) { return v < r.first; });
  if (it == std::begin(kClassRanges)) return kOther;
  --it;
  return u <= it->last ? it->cls : kOther;
}

// str.lower(); the one mapping to two code points (U+0130) is handled by the caller.
Unit LowerSimple(Unit u) {
  if (u < 0x80) return (u >= 'A' && u <= 'Z') ? u + 32 : u;
  if (u & kRawByte) return u;
  auto it = std::upper_bound(std::begin(kLowerRanges), std::end(kLowerRanges), u,
                             [](uint32_t v, const LowerRange& r) { return v < r.first; });
  if (it == std::begin(kLowerRanges)) return u;
  --it;
  if (u > it->last || (u - it->first) % it->stride != 0) return u;
  return static_cast<Unit>(static_cast<int64_t>(u) + it->delta);
}

// ---- HTML character references (Python's html.unescape, with a subset of named ones) ----

struct Entity {
  const char* name;
  uint32_t cp;
  bool legacy;  // also recognized without the semicolon (HTML's legacy entities)
};

// The XML entities, every Latin-1 entity (these are exactly HTML's legacy ones) and the
// typographic ones common in product and web text. html.unescape knows all 2,231 HTML5
// names; the others are left undecoded.
constexpr Entity kEntities[] = {
    {"amp", '&', true},        {"AMP", '&', true},        {"lt", '<', true},
    {"LT", '<', true},         {"gt", '>', true},         {"GT", '>', true},
    {"quot", '"', true},       {"QUOT", '"', true},       {"apos", '\'', false},
    {"COPY", 0xA9, true},      {"REG", 0xAE, true},       {"nbsp", 0xA0, true},
    {"iexcl", 0xA1, true},     {"cent", 0xA2, true},      {"pound", 0xA3, true},
    {"curren", 0xA4, true},    {"yen", 0xA5, true},       {"brvbar", 0xA6, true},
    {"sect", 0xA7, true},      {"uml", 0xA8, true},       {"copy", 0xA9, true},
    {"ordf", 0xAA, true},      {"laquo", 0xAB, true},     {"not", 0xAC, true},
    {"shy", 0xAD, true},       {"reg", 0xAE, true},       {"macr", 0xAF, true},
    {"deg", 0xB0, true},       {"plusmn", 0xB1, true},    {"sup2", 0xB2, true},
    {"sup3", 0xB3, true},      {"acute", 0xB4, true},     {"micro", 0xB5, true},
    {"para", 0xB6, true},      {"middot", 0xB7, true},    {"cedil", 0xB8, true},
    {"sup1", 0xB9, true},      {"ordm", 0xBA, true},      {"raquo", 0xBB, true},
    {"frac14", 0xBC, true},    {"frac12", 0xBD, true},    {"frac34", 0xBE, true},
    {"iquest", 0xBF, true},    {"Agrave", 0xC0, true},    {"Aacute", 0xC1, true},
    {"Acirc", 0xC2, true},     {"Atilde", 0xC3, true},    {"Auml", 0xC4, true},
    {"Aring", 0xC5, true},     {"AElig", 0xC6, true},     {"Ccedil", 0xC7, true},
    {"Egrave", 0xC8, true},    {"Eacute", 0xC9, true},    {"Ecirc", 0xCA, true},
    {"Euml", 0xCB, true},      {"Igrave", 0xCC, true},    {"Iacute", 0xCD, true},
    {"Icirc", 0xCE, true},     {"Iuml", 0xCF, true},      {"ETH", 0xD0, true},
    {"Ntilde", 0xD1, true},    {"Ograve", 0xD2, true},    {"Oacute", 0xD3, true},
    {"Ocirc", 0xD4, true},     {"Otilde", 0xD5, true},    {"Ouml", 0xD6, true},
    {"times", 0xD7, true},     {"Oslash", 0xD8, true},    {"Ugrave", 0xD9, true},
    {"Uacute", 0xDA, true},    {"Ucirc", 0xDB, true},     {"Uuml", 0xDC, true},
    {"Yacute", 0xDD, true},    {"THORN", 0xDE, true},     {"szlig", 0xDF, true},
    {"agrave", 0xE0, true},    {"aacute", 0xE1, true},    {"acirc", 0xE2, true},
    {"atilde", 0xE3, true},    {"auml", 0xE4, true},      {"aring", 0xE5, true},
    {"aelig", 0xE6, true},     {"ccedil", 0xE7, true},    {"egrave", 0xE8, true},
    {"eacute", 0xE9, true},    {"ecirc", 0xEA, true},     {"euml", 0xEB, true},
    {"igrave", 0xEC, true},    {"iacute", 0xED, true},    {"icirc", 0xEE, true},
    {"iuml", 0xEF, true},      {"eth", 0xF0, true},       {"ntilde", 0xF1, true},
    {"ograve", 0xF2, true},    {"oacute", 0xF3, true},    {"ocirc", 0xF4, true},
    {"otilde", 0xF5, true},    {"ouml", 0xF6, true},      {"divide", 0xF7, true},
    {"oslash", 0xF8, true},    {"ugrave", 0xF9, true},    {"uacute", 0xFA, true},
    {"ucirc", 0xFB, true},     {"uuml", 0xFC, true},      {"yacute", 0xFD, true},
    {"thorn", 0xFE, true},     {"yuml", 0xFF, true},      {"OElig", 0x152, false},
    {"oelig", 0x153, false},   {"Scaron", 0x160, false},  {"scaron", 0x161, false},
    {"Yuml", 0x178, false},    {"fnof", 0x192, false},    {"circ", 0x2C6, false},
    {"tilde", 0x2DC, false},   {"ensp", 0x2002, false},   {"emsp", 0x2003, false},
    {"thinsp", 0x2009, false}, {"zwnj", 0x200C, false},   {"zwj", 0x200D, false},
    {"lrm", 0x200E, false},    {"rlm", 0x200F, false},    {"ndash", 0x2013, false},
    {"mdash", 0x2014, false},  {"lsquo", 0x2018, false},  {"rsquo", 0x2019, false},
    {"sbquo", 0x201A, false},  {"ldquo", 0x201C, false},  {"rdquo", 0x201D, false},
    {"bdquo", 0x201E, false},  {"dagger", 0x2020, false}, {"Dagger", 0x2021, false},
    {"bull", 0x2022, false},   {"hellip", 0x2026, false}, {"permil", 0x2030, false},
    {"prime", 0x2032, false},  {"Prime", 0x2033, false},  {"lsaquo", 0x2039, false},
    {"rsaquo", 0x203A, false}, {"euro", 0x20AC, false},   {"trade", 0x2122, false},
};

const Entity* FindEntity(std::string_view name, bool need_legacy) {
  for (const Entity& e : kEntities) {
    if (name == e.name && (e.legacy || !need_legacy)) return &e;
  }
  return nullptr;
}

// Windows-1252 for references to C1 control characters, as html.unescape (and browsers) do;
// 0 means "stays as it is".
constexpr uint16_t kCp1252[32] = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                  0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

// The value of a numeric reference, as html.unescape maps it: appends 0 or 1 units.
void AppendCharRef(uint32_t num, std::vector<Unit>* out) {
  if (num == 0) return out->push_back(0xFFFD);
  if (num == 0x0D) return out->push_back(0x0D);
  if (num >= 0x80 && num <= 0x9F) {
    return out->push_back(kCp1252[num - 0x80] ? kCp1252[num - 0x80] : num);
  }
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return out->push_back(0xFFFD);
  const bool invalid = (num >= 0x01 && num <= 0x08) || num == 0x0B ||
                       (num >= 0x0E && num <= 0x1F) || num == 0x7F ||
                       (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE;
  if (!invalid) out->push_back(num);
}

bool IsAsciiDigit(Unit u) { return u >= '0' && u <= '9'; }
bool IsHexDigit(Unit u) {
  return IsAsciiDigit(u) || (u >= 'a' && u <= 'f') || (u >= 'A' && u <= 'F');
}
uint32_t HexValue(Unit u) { return IsAsciiDigit(u) ? u - '0' : (u | 0x20) - 'a' + 10; }

// One pass of html.unescape: references are `&#123;`, `&#x7B;` (semicolon optional) and
// `&name;`; a name that is not known as a whole falls back to its longest legacy prefix
// ("&copy2024" -> "©2024"), everything else stays as written.
std::vector<Unit> HtmlUnescape(const std::vector<Unit>& in) {
  if (std::find(in.begin(), in.end(), Unit{'&'}) == in.end()) return in;
  std::vector<Unit> out;
  out.reserve(in.size());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    if (in[i] != '&') {
      out.push_back(in[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < n && in[j] == '#') {
      const bool hex = j + 1 < n && (in[j + 1] == 'x' || in[j + 1] == 'X');
      size_t k = hex ? j + 2 : j + 1;
      const size_t digits_start = k;
      uint32_t num = 0;
      while (k < n && (hex ? IsHexDigit(in[k]) : IsAsciiDigit(in[k]))) {
        num = std::min<uint32_t>(0x110000,
                                 num * (hex ? 16 : 10) + (hex ? HexValue(in[k]) : in[k] - '0'));
        ++k;
      }
      if (k == digits_start) {  // "&#" or "&#x" without digits is no reference
        out.push_back(in[i++]);
        continue;
      }
      if (k < n && in[k] == ';') ++k;
      AppendCharRef(num, &out);
      i = k;
      continue;
    }
    // A name: up to 32 characters other than tab, line feed, form feed, space, <, &, # and ;.
    size_t k = j;
    while (k < n && k - j < 32 && in[k] != '\t' && in[k] != '\n' && in[k] != '\f' && in[k] != ' ' &&
           in[k] != '<' && in[k] != '&' && in[k] != '#' && in[k] != ';') {
      ++k;
    }
    if (k == j) {
      out.push_back(in[i++]);
      continue;
    }
    const bool semicolon = k < n && in[k] == ';';
    std::string name;  // non-ASCII characters can never be part of a known name
    for (size_t p = j; p < k; ++p) name.push_back(in[p] < 0x80 ? static_cast<char>(in[p]) : '\x01');
    const size_t end = semicolon ? k + 1 : k;
    if (const Entity* e = FindEntity(name, !semicolon)) {
      out.push_back(e->cp);
      i = end;
      continue;
    }
    // Longest proper prefix (at least 2 characters) that is a legacy name; the rest is text.
    const size_t piece = end - j;  // the name with its semicolon
    bool found = false;
    for (size_t len = piece - 1; len >= 2 && len <= name.size(); --len) {
      if (const Entity* e = FindEntity(std::string_view(name).substr(0, len), true)) {
        out.push_back(e->cp);
        i = j + len;
        found = true;
        break;
      }
    }
    if (!found) out.push_back(in[i++]);
  }
  return out;
}

// ---- the character-level fixes of ftfy.fix_text ----

// fix_latin_ligatures: appends the letters a ligature stands for; false if `u` is none.
bool ExpandLigature(Unit u, std::vector<Unit>* out) {
  static constexpr struct {
    uint32_t cp;
    const char16_t* text;
  } kLigatures[] = {
      {0x132, u"IJ"},       {0x133, u"ij"},      {0x149, u"\u02BCn"}, {0x1C4, u"D\u017D"},
      {0x1C5, u"D\u017E"},  {0x1C6, u"d\u017E"}, {0x1C7, u"LJ"},      {0x1C8, u"Lj"},
      {0x1C9, u"lj"},       {0x1CA, u"NJ"},      {0x1CB, u"Nj"},      {0x1CC, u"nj"},
      {0x1F1, u"DZ"},       {0x1F2, u"Dz"},      {0x1F3, u"dz"},      {0xFB00, u"ff"},
      {0xFB01, u"fi"},      {0xFB02, u"fl"},     {0xFB03, u"ffi"},    {0xFB04, u"ffl"},
      {0xFB05, u"\u017Ft"}, {0xFB06, u"st"},
  };
  for (const auto& l : kLigatures) {
    if (l.cp == u) {
      for (const char16_t* c = l.text; *c; ++c) out->push_back(*c);
      return true;
    }
  }
  return false;
}

// fix_character_width, uncurl_quotes and remove_control_chars for one character; returns
// false when the character is removed.
bool FixCharacter(Unit* u) {
  const Unit c = *u;
  if (c >= 0xFF01 && c <= 0xFF5E) {
    *u = c - 0xFF01 + 0x21;  // full-width ASCII
  } else if (c == 0x3000) {
    *u = ' ';  // ideographic space
  } else if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {
    *u = '\'';
  } else if (c >= 0x201C && c <= 0x201F) {
    *u = '"';
  }
  const Unit f = *u;
  const bool control = f <= 0x08 || f == 0x0B || (f >= 0x0E && f <= 0x1F) || f == 0x7F ||
                       (f >= 0x206A && f <= 0x206F) || f == 0xFEFF || (f >= 0xFFF9 && f <= 0xFFFC);
  return !control;
}

std::vector<Unit> CleanUnits(std::string_view text) {
  std::vector<Unit> units = DecodeUtf8(text);
  // CLIP unescapes twice (after ftfy, which also decodes entities when the text holds no
  // '<'); unescaping before the character fixes lets a decoded &rsquo; be uncurled too.
  units = HtmlUnescape(HtmlUnescape(units));
  std::vector<Unit> fixed;
  fixed.reserve(units.size());
  std::vector<Unit> expanded;
  for (Unit u : units) {
    expanded.clear();
    if (!ExpandLigature(u, &expanded)) expanded.push_back(u);
    for (Unit e : expanded) {
      if (FixCharacter(&e)) fixed.push_back(e);
    }
  }
  // White space runs become one space, none at either end; then lower-case.
  std::vector<Unit> out;
  out.reserve(fixed.size());
  bool pending_space = false;
  for (size_t k = 0; k < fixed.size(); ++k) {
    const Unit u = fixed[k];
    if (Classify(u) == kSpace) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    if (u == 0x130) {  // İ lower-cases to i + combining dot above
      out.push_back('i');
      out.push_back(0x307);
    } else if (u == 0x3A3 && k > 0 && Classify(fixed[k - 1]) == kLetter &&
               (k + 1 == fixed.size() || Classify(fixed[k + 1]) != kLetter)) {
      // Python's Final_Sigma rule, with "letter" for "cased letter" and no skipping of
      // case-ignorable characters: a capital sigma ending a word becomes ς, not σ.
      out.push_back(0x3C2);
    } else {
      out.push_back(LowerSimple(u));
    }
  }
  return out;
}

// CLIP compiles its pattern with IGNORECASE. On lower-cased text that changes two things,
// both reproduced: the long s (U+017F) matches the literal 's' of the pattern, and U+0345
// (combining ypogegrammeni, which case-folds to a Greek letter) matches none of the character
// classes, so the pattern skips it like white space.
constexpr Unit kLongS = 0x17F;
constexpr Unit kYpogegrammeni = 0x345;

// Whether `s` (ASCII, as written in the pattern) matches at `pos`; *exact is false when a
// long s stood in for an 's'.
bool MatchesLiteral(const std::vector<Unit>& units, size_t pos, std::string_view s,
                    bool* exact = nullptr) {
  if (pos + s.size() > units.size()) return false;
  bool same = true;
  for (size_t k = 0; k < s.size(); ++k) {
    const Unit u = units[pos + k];
    if (u == static_cast<unsigned char>(s[k])) continue;
    if (u == kLongS && s[k] == 's') {
      same = false;
      continue;
    }
    return false;
  }
  if (exact != nullptr) *exact = same;
  return true;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd) at `pos`, or 0.
size_t ContractionLength(const std::vector<Unit>& units, size_t pos) {
  for (std::string_view c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
    if (MatchesLiteral(units, pos, c)) return c.size();
  }
  return 0;
}

// The class a unit has in the pattern (see kYpogegrammeni).
CharClass PatternClass(Unit u) { return u == kYpogegrammeni ? kSpace : Classify(u); }

// CLIP's byte -> character table: printable Latin-1 bytes stand for themselves, the others
// (controls, space, DEL, NBSP, soft hyphen) are moved to U+0100 onwards in byte order. The
// order of the returned bytes is the order of the first 256 ids.
std::array<std::pair<uint8_t, uint32_t>, 256> ByteSymbols() {
  std::array<std::pair<uint8_t, uint32_t>, 256> out;
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  size_t n = 0;
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) out[n++] = {static_cast<uint8_t>(b), static_cast<uint32_t>(b)};
  }
  uint32_t moved = 256;
  for (int b = 0; b < 256; ++b) {
    if (!printable(b)) out[n++] = {static_cast<uint8_t>(b), moved++};
  }
  return out;
}

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// The whole decompressed file. Reading to the end (not only the merges CLIP uses) makes
// zlib check the gzip trailer's CRC and length, so a damaged file is reported, not used.
Result<std::string> ReadGzipFile(const std::string& path) {
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  }
  gzbuffer(f, 1 << 17);
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) data.append(buf, n);
  int errnum = Z_OK;
  const char* msg = gzerror(f, &errnum);
  std::string error = (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END))
                          ? std::string(msg != nullptr && *msg ? msg : "read error")
                          : std::string();
  // zlib passes files without a gzip header through unchanged; CLIP's file is always gzip.
  const bool not_gzip = error.empty() && gzdirect(f) == 1;
  gzclose(f);
  if (errnum == Z_ERRNO) return Status::IoError(path + ": read failed: " + error);
  if (!error.empty()) return Status::Corruption(path + ": damaged gzip data: " + error);
  if (not_gzip) return Status::Corruption(path + ": not a gzip file");
  return data;
}

}  // namespace

Result<std::unique_ptr<ClipTokenizer>> ClipTokenizer::Load(const std::string& vocab_gz_path) {
  DYNSPEC_ASSIGN_OR_RETURN(std::string data, ReadGzipFile(vocab_gz_path));
  const std::string& path = vocab_gz_path;

  std::unique_ptr<ClipTokenizer> tok(new ClipTokenizer());
  tok->tokens_.reserve(kVocabSize);
  std::unordered_map<std::string, int32_t> ids;  // vocabulary string -> id
  ids.reserve(kVocabSize);
  auto add_token = [&](std::string s) {
    const auto id = static_cast<int32_t>(tok->tokens_.size());
    ids[s] = id;  // a repeated string keeps its last id, as CLIP's dict does
    tok->tokens_.push_back(std::move(s));
  };
  std::unordered_map<uint32_t, uint8_t> symbol_byte;  // byte-level character -> byte
  const auto symbols = ByteSymbols();
  for (const auto& [byte, cp] : symbols) {
    std::string s;
    AppendUnit(cp, &s);
    tok->byte_id_[byte] = static_cast<int32_t>(tok->tokens_.size());
    symbol_byte[cp] = byte;
    add_token(std::move(s));
  }
  for (const auto& [byte, cp] : symbols) add_token(tok->tokens_[tok->byte_id_[byte]] + "</w>");

  // Merge lines 1 .. kMerges (line 0 is the version header).
  struct PendingMerge {
    std::string left, right;
  };
  std::vector<PendingMerge> merges;
  merges.reserve(kMerges);
  size_t pos = data.find('\n');
  int line_no = 1;  // 0-based index of the line starting at pos + 1
  while (pos != std::string::npos && static_cast<int>(merges.size()) < kMerges) {
    const size_t start = pos + 1;
    size_t end = data.find('\n', start);
    pos = end;
    if (end == std::string::npos) end = data.size();
    // Python's str.split(): any run of ASCII white space separates fields.
    std::vector<std::string> fields;
    size_t p = start;
    while (p < end) {
      while (p < end && std::isspace(static_cast<unsigned char>(data[p]))) ++p;
      size_t q = p;
      while (q < end && !std::isspace(static_cast<unsigned char>(data[q]))) ++q;
      if (q > p) fields.emplace_back(data, p, q - p);
      p = q;
    }
    if (start == data.size() && fields.empty()) break;  // the file's final newline
    if (fields.size() != 2) {
      return Status::Corruption(path + ": line " + std::to_string(line_no + 1) +
                                " should be a merge of two symbols, has " +
                                std::to_string(fields.size()) + " fields");
    }
    const auto left = ids.find(fields[0]);
    const auto right = ids.find(fields[1]);
    if (left == ids.end() || right == ids.end()) {
      return Status::Corruption(path + ": line " + std::to_string(line_no + 1) + ": symbol '" +
                                (left == ids.end() ? fields[0] : fields[1]) +
                                "' is neither a byte symbol nor made by an earlier merge");
    }
    add_token(fields[0] + fields[1]);
    merges.push_back({std::move(fields[0]), std::move(fields[1])});
    ++line_no;
  }
  if (static_cast<int>(merges.size()) < kMerges) {
    return Status::Corruption(path + ": has " + std::to_string(merges.size()) +
                              " merge lines, CLIP's vocabulary needs " + std::to_string(kMerges) +
                              " (truncated file?)");
  }
  add_token("<|startoftext|>");
  add_token("<|endoftext|>");

  // Resolve symbols to ids only now, so that a string made by two merges maps to its last id
  // everywhere, as in CLIP's encoder dict. (CLIP's own file has no such repeats.)
  tok->merges_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const int32_t left = ids.at(merges[r].left);
    const int32_t right = ids.at(merges[r].right);
    tok->merges_[PairKey(left, right)] = {static_cast<int32_t>(r),
                                          ids.at(merges[r].left + merges[r].right)};
  }

  tok->token_bytes_.reserve(tok->tokens_.size());
  for (size_t id = 0; id < tok->tokens_.size(); ++id) {
    std::string bytes;
    for (Unit u : DecodeUtf8(tok->tokens_[id])) {
      // Every vocabulary string is made of byte symbols; the special tokens and `</w>` are
      // printable ASCII, which stands for itself.
      bytes.push_back(static_cast<char>(symbol_byte.at(u)));
    }
    tok->token_bytes_.push_back(std::move(bytes));
  }
  return tok;
}

void ClipTokenizer::EncodePiece(std::string_view bytes, std::vector<int32_t>* out) const {
  const int n = static_cast<int>(bytes.size());
  std::vector<int32_t> sym(n);
  for (int i = 0; i < n; ++i) sym[i] = byte_id_[static_cast<unsigned char>(bytes[i])];
  sym[n - 1] += 256;  // the same byte with `</w>`: ids 256..511 mirror 0..255
  if (n == 1) {
    out->push_back(sym[0]);
    return;
  }

  // CLIP merges, in rounds, the adjacent pair of lowest rank everywhere it occurs, left to
  // right, until no adjacent pair is a merge. This does the same with a heap of candidate
  // pairs instead of rescanning the word each round: O(n log n) rather than O(n^2), which
  // matters for long runs of letters. Symbols live in a linked list over their first
  // position; a candidate is stale once either symbol changed or they are no longer adjacent.
  std::vector<int> next(n), prev(n);
  for (int i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  struct Candidate {
    int32_t rank;
    int left, right;
    int32_t left_id, right_id, merged;
  };
  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> heap(later);
  auto push_pair = [&](int left) {
    const int right = next[left];
    if (right < 0) return;
    auto it = merges_.find(PairKey(sym[left], sym[right]));
    if (it == merges_.end()) return;
    heap.push({it->second.rank, left, right, sym[left], sym[right], it->second.merged});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);

  std::vector<Candidate> round;
  while (!heap.empty()) {
    // Take every candidate of the lowest rank first, in position order, so that pairs made
    // during this round wait for the next one, exactly as in CLIP's loop.
    const int32_t rank = heap.top().rank;
    round.clear();
    while (!heap.empty() && heap.top().rank == rank) {
      round.push_back(heap.top());
      heap.pop();
    }
    for (const Candidate& c : round) {
      if (next[c.left] != c.right || sym[c.left] != c.left_id || sym[c.right] != c.right_id) {
        continue;
      }
      sym[c.left] = c.merged;
      sym[c.right] = -1;
      next[c.left] = next[c.right];
      if (next[c.left] >= 0) prev[next[c.left]] = c.left;
      if (prev[c.left] >= 0) push_pair(prev[c.left]);
      push_pair(c.left);
    }
  }
  for (int i = 0; i >= 0; i = next[i]) out->push_back(sym[i]);
}

std::vector<int32_t> ClipTokenizer::Encode(std::string_view text) const {
  const std::vector<Unit> units = CleanUnits(text);
  std::vector<int32_t> ids;
  std::string piece;
  const size_t n = units.size();
  size_t i = 0;
  // The pattern's alternatives in order; the first that matches at i wins.
  while (i < n) {
    size_t end = i;
    bool exact = true;
    if (MatchesLiteral(units, i, "<|startoftext|>", &exact)) {
      end = i + 15;
      if (exact) ids.push_back(kStartToken);
    } else if (MatchesLiteral(units, i, "<|endoftext|>", &exact)) {
      end = i + 13;
      if (exact) ids.push_back(kEndToken);
    }
    if (end > i && exact) {
      i = end;
      continue;
    }
    // (With a long s in it, a special token's string is an ordinary piece: CLIP maps only
    // the exact strings to the special ids.)
    if (end == i) end = i + ContractionLength(units, i);
    if (end == i) {
      const CharClass cls = PatternClass(units[i]);
      if (cls == kSpace) {
        ++i;
        continue;
      }
      end = i + 1;
      if (cls == kLetter || cls == kOther) {  // [\p{L}]+ or [^\s\p{L}\p{N}]+; a number is one
        while (end < n && PatternClass(units[end]) == cls) ++end;
      }
    }
    piece.clear();
    for (size_t k = i; k < end; ++k) AppendUnit(units[k], &piece);
    EncodePiece(piece, &ids);
    i = end;
  }
  return ids;
}

Result<std::vector<int32_t>> ClipTokenizer::Tokenize(std::string_view text, int context_length,
                                                     bool truncate) const {
  if (context_length < 2) {
    return Status::InvalidArgument(
        "context_length must be at least 2 (start and end tokens), got " +
        std::to_string(context_length));
  }
  std::vector<int32_t> ids = Encode(text);
  const size_t total = ids.size() + 2;
  if (total > static_cast<size_t>(context_length)) {
    if (!truncate) {
      return Status::InvalidArgument("text is too long for context length " +
                                     std::to_string(context_length) + ": it has " +
                                     std::to_string(total) + " tokens with start and end");
    }
    ids.resize(context_length - 2);
  }
  std::vector<int32_t> out(context_length, 0);
  out[0] = kStartToken;
  std::copy(ids.begin(), ids.end(), out.begin() + 1);
  out[ids.size() + 1] = kEndToken;
  return out;
}

std::string ClipTokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id >= 0 && static_cast<size_t>(id) < token_bytes_.size()) {
      bytes += token_bytes_[id];
    } else {
      bytes += "\xEF\xBF\xBD";
    }
  }
  // Over the whole text, like CLIP's str.replace, not token by token.
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    if (bytes.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(bytes[i++]);
    }
  }
  return out;
}

std::string_view ClipTokenizer::Token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size()) return {};
  return tokens_[id];
}

std::string ClipTokenizer::CleanText(std::string_view text) { return EncodeUtf8(CleanUnits(text)); }

Result<std::string> DescribeClipTokens(const std::string& vocab_gz_path, std::string_view text,
                                       int context_length, bool truncate) {
  DYNSPEC_ASSIGN_OR_RETURN(std::unique_ptr<ClipTokenizer> tok, ClipTokenizer::Load(vocab_gz_path));
  DYNSPEC_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Tokenize(text, context_length, truncate));
  // Counted from Encode rather than by finding the end token: the text itself may contain
  // the literal <|endoftext|>.
  const size_t full = tok->Encode(text).size() + 2;
  const size_t used = std::min(full, ids.size());
  std::string out = "ids:";
  for (size_t i = 0; i < used; ++i) out += " " + std::to_string(ids[i]);
  out += "\ntokens:";
  for (size_t i = 0; i < used; ++i) out += " " + std::string(tok->Token(ids[i]));
  out += "\nlength: " + std::to_string(used) + " of " + std::to_string(context_length);
  if (used < ids.size()) {
    out += ", then " + std::to_string(ids.size() - used) + " zeros of padding";
  }
  out += "\n";
  if (full > used) {
    out += "truncated: the text has " + std::to_string(full) + " tokens with start and end\n";
  }
  return out;
}

}  // namespace dynspec
