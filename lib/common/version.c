/* version.c: PEP 440 version parsing and ordering, as Python's packaging.version.Version orders them. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "common/version.h"

/* A number is kept as its digits without leading zeros, so any length compares right. */
static int cmp_number(const oftawq__vnum *a, const oftawq__vnum *b)
{
  if (a->len != b->len) return a->len < b->len ? -1 : 1;
  {
    int c = memcmp(a->digits, b->digits, a->len);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
}

static int is_sep(char c) { return c == '-' || c == '_' || c == '.'; }

/* Case-insensitive prefix match; returns its length or 0. */
static size_t match_word(const char *s, const char *word)
{
  size_t n = strlen(word), i;
  for (i = 0; i < n; i++)
    if (tolower((unsigned char)s[i]) != word[i]) return 0;
  return n;
}

static const char *parse_number(const char *s, oftawq__vnum *out)
{
  const char *p = s;
  if (!isdigit((unsigned char)*p)) return NULL;
  while (*p == '0' && isdigit((unsigned char)p[1])) p++;
  out->digits = p;
  while (isdigit((unsigned char)*p)) p++;
  out->len = (size_t)(p - out->digits);
  if (out->len == 1 && out->digits[0] == '0') out->len = 0; /* zero is the empty number */
  return p;
}

/* Optional separator, then an optional number (implicit 0). Mirrors `[-_\.]?(N)?`. */
static const char *parse_opt_number(const char *p, oftawq__vnum *out)
{
  const char *q = p;
  out->digits = "";
  out->len = 0;
  if (is_sep(*q)) q++;
  if (isdigit((unsigned char)*q)) return parse_number(q, out);
  return q; /* a lone separator is consumed, as the regular expression does */
}

int oftawq__version_parse(const char *text, oftawq__version *v)
{
  const char *p = text, *q;
  size_t n;
  memset(v, 0, sizeof *v);
  v->epoch.digits = "";
  while (isspace((unsigned char)*p)) p++;
  if (*p == 'v' || *p == 'V') p++;

  /* epoch "N!" or the first release number */
  if (!(q = parse_number(p, &v->release[0]))) return 0;
  if (*q == '!') {
    v->epoch = v->release[0];
    p = q + 1;
    if (!(q = parse_number(p, &v->release[0]))) return 0;
  }
  v->nrelease = 1;
  p = q;
  while (*p == '.' && isdigit((unsigned char)p[1])) {
    if (v->nrelease == OFTAWQ__VERSION_MAX_RELEASE) return 0;
    p = parse_number(p + 1, &v->release[v->nrelease++]);
  }

  /* pre-release: [-_.]? (alpha|a|beta|b|preview|pre|c|rc) [-_.]? N? */
  q = is_sep(*p) ? p + 1 : p;
  {
    static const struct { const char *word; char kind; } pre[] = {
      {"alpha", 'a'}, {"a", 'a'}, {"beta", 'b'}, {"b", 'b'}, {"preview", 'c'}, {"pre", 'c'}, {"c", 'c'}, {"rc", 'c'},
    };
    size_t i;
    for (i = 0; i < sizeof pre / sizeof pre[0]; i++) {
      if ((n = match_word(q, pre[i].word)) != 0) {
        v->pre_kind = pre[i].kind;
        p = parse_opt_number(q + n, &v->pre);
        break;
      }
    }
  }

  /* post-release: -N, or [-_.]? (post|rev|r) [-_.]? N? */
  if (*p == '-' && isdigit((unsigned char)p[1])) {
    v->has_post = 1;
    p = parse_number(p + 1, &v->post);
  } else {
    static const char *const post[] = {"post", "rev", "r"};
    size_t i;
    q = is_sep(*p) ? p + 1 : p;
    for (i = 0; i < 3; i++) {
      if ((n = match_word(q, post[i])) != 0) {
        v->has_post = 1;
        p = parse_opt_number(q + n, &v->post);
        break;
      }
    }
  }

  /* dev-release: [-_.]? dev [-_.]? N? */
  q = is_sep(*p) ? p + 1 : p;
  if ((n = match_word(q, "dev")) != 0) {
    v->has_dev = 1;
    p = parse_opt_number(q + n, &v->dev);
  }

  /* local label: + [a-z0-9]+ ([-_.][a-z0-9]+)* */
  if (*p == '+') {
    p++;
    v->local = p;
    for (;;) {
      const char *start = p;
      while (isalnum((unsigned char)*p)) p++;
      if (p == start) return 0;
      if (is_sep(*p) && isalnum((unsigned char)p[1])) {
        p++;
        continue;
      }
      break;
    }
    v->local_len = (size_t)(p - v->local);
  }
  while (isspace((unsigned char)*p)) p++;
  return *p == '\0';
}

/* Next segment of a local label: numeric or alphanumeric. */
typedef struct local_seg {
  const char *s;
  size_t len;
  int numeric;
} local_seg;

static size_t next_segment(const char *s, size_t len, size_t pos, local_seg *seg)
{
  size_t i = pos, k;
  seg->s = s + pos;
  while (i < len && !is_sep(s[i])) i++;
  seg->len = i - pos;
  seg->numeric = 1;
  for (k = 0; k < seg->len; k++)
    if (!isdigit((unsigned char)seg->s[k])) seg->numeric = 0;
  return i < len ? i + 1 : i;
}

static int cmp_local(const oftawq__version *a, const oftawq__version *b)
{
  size_t pa = 0, pb = 0;
  /* No label sorts before any label. */
  if (!a->local_len || !b->local_len) return (a->local_len != 0) - (b->local_len != 0);
  while (pa < a->local_len && pb < b->local_len) {
    local_seg x, y;
    int c = 0;
    pa = next_segment(a->local, a->local_len, pa, &x);
    pb = next_segment(b->local, b->local_len, pb, &y);
    if (x.numeric && y.numeric) {
      oftawq__vnum nx, ny;
      parse_number(x.s, &nx);
      parse_number(y.s, &ny);
      c = cmp_number(&nx, &ny);
    } else if (x.numeric != y.numeric) {
      c = x.numeric ? 1 : -1; /* numeric segments sort after alphanumeric ones */
    } else {
      size_t k, m = x.len < y.len ? x.len : y.len;
      for (k = 0; k < m && !c; k++) {
        int cx = tolower((unsigned char)x.s[k]), cy = tolower((unsigned char)y.s[k]);
        c = cx < cy ? -1 : cx > cy ? 1 : 0;
      }
      if (!c && x.len != y.len) c = x.len < y.len ? -1 : 1;
    }
    if (c) return c;
  }
  if (pa < a->local_len) return 1;
  if (pb < b->local_len) return -1;
  return 0;
}

/* The pre-release rank: a dev release of a final version sorts before its
 * alphas; a version with neither pre nor dev sorts after every pre-release. */
static int pre_rank(const oftawq__version *v)
{
  if (v->pre_kind) return 1;
  if (!v->has_post && v->has_dev) return 0;
  return 2;
}

int oftawq__version_cmp(const oftawq__version *a, const oftawq__version *b)
{
  int c, i, n;
  static const oftawq__vnum zero = {"", 0};
  if ((c = cmp_number(&a->epoch, &b->epoch)) != 0) return c;
  n = a->nrelease > b->nrelease ? a->nrelease : b->nrelease;
  for (i = 0; i < n; i++) {
    const oftawq__vnum *x = i < a->nrelease ? &a->release[i] : &zero;
    const oftawq__vnum *y = i < b->nrelease ? &b->release[i] : &zero;
    if ((c = cmp_number(x, y)) != 0) return c;
  }
  if (pre_rank(a) != pre_rank(b)) return pre_rank(a) < pre_rank(b) ? -1 : 1;
  if (a->pre_kind) {
    if (a->pre_kind != b->pre_kind) return a->pre_kind < b->pre_kind ? -1 : 1;
    if ((c = cmp_number(&a->pre, &b->pre)) != 0) return c;
  }
  if (a->has_post != b->has_post) return a->has_post ? 1 : -1;
  if (a->has_post && (c = cmp_number(&a->post, &b->post)) != 0) return c;
  if (a->has_dev != b->has_dev) return a->has_dev ? -1 : 1;
  if (a->has_dev && (c = cmp_number(&a->dev, &b->dev)) != 0) return c;
  return cmp_local(a, b);
}

oftawq_status oftawq_version_compare(const char *a, const char *b, int *result)
{
  oftawq__version va, vb;
  if (!a || !b || !result) return OFTAWQ_E_INVALID_ARGUMENT;
  if (!oftawq__version_parse(a, &va) || !oftawq__version_parse(b, &vb)) return OFTAWQ_E_INVALID_ARGUMENT;
  *result = oftawq__version_cmp(&va, &vb);
  return OFTAWQ_OK;
}

int oftawq__peft_legacy_neumann(const char *peft_version, int *legacy)
{
  oftawq__version v, changed;
  char *trimmed = oftawq__strdup(peft_version);
  int ok;
  if (!trimmed) return -1;
  trimmed[strcspn(trimmed, "@")] = '\0';
  ok = oftawq__version_parse(trimmed, &v) && oftawq__version_parse(OFTAWQ__NEUMANN_FORMULA_CHANGED_IN, &changed);
  if (ok) *legacy = oftawq__version_cmp(&v, &changed) < 0;
  free(trimmed);
  return ok;
}
