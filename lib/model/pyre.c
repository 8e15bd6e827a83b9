/* pyre.c: a small Python-`re` matcher for PEFT's target_modules / exclude_modules / layers_pattern - parser, compiler, memoised backtracking. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "model/pyre.h"

/* Groups nest at most this deep (the parser recurses per group). */
#define MAX_DEPTH 64
#define CLASS_WORDS 8 /* 256-bit byte sets */

enum op { OP_CHAR, OP_ANY, OP_CLASS, OP_ASSERT, OP_SPLIT, OP_JMP, OP_SAVE, OP_MARK, OP_LOOP, OP_MATCH };
enum assertion { AS_BOL, AS_EOL, AS_BEGIN, AS_END, AS_WORD_B, AS_NOT_WORD_B };

typedef struct inst {
  enum op op;
  int x, y; /* CHAR: byte; CLASS: set; ASSERT: kind; SPLIT: preferred, other; JMP: target; SAVE, MARK: slot;
             * LOOP: slot, loop head (the next instruction is the exit) */
} inst;

typedef struct byteset {
  unsigned w[CLASS_WORDS];
} byteset;

struct oftawq__pyre {
  inst *prog;
  int n, cap;
  byteset *sets;
  int n_sets;
  int groups;
  int loops;               /* unbounded repeats: each keeps where its iteration began */
};

/* ------------------------------------------------------------------ syntax tree */

enum node_kind { N_EMPTY, N_CHAR, N_ANY, N_SET, N_ASSERT, N_GROUP, N_CAT, N_ALT, N_REPEAT };

typedef struct node {
  enum node_kind kind;
  int value;              /* CHAR: byte; SET: set index; ASSERT: kind; GROUP: group number or -1 */
  int min, max, greedy;   /* REPEAT: max -1 = unbounded */
  struct node **kids;
  int n_kids;
} node;

typedef struct parser {
  const char *p;
  oftawq__pyre *re;
  char *why;
  size_t cap;
  int failed;
} parser;

static void node_free(node *n)
{
  int i;
  if (!n) return;
  for (i = 0; i < n->n_kids; i++) node_free(n->kids[i]);
  free(n->kids);
  free(n);
}

static int fail(parser *ps, const char *what)
{
  if (!ps->failed) oftawq__why(ps->why, ps->cap, OFTAWQ_E_UNSUPPORTED, "%s", what);
  ps->failed = 1;
  return 0;
}

static node *new_node(parser *ps, enum node_kind kind, int value)
{
  node *n = calloc(1, sizeof *n);
  if (!n) {
    fail(ps, "out of memory");
    return NULL;
  }
  n->kind = kind;
  n->value = value;
  return n;
}

static int add_kid(parser *ps, node *n, node *kid)
{
  node **grown;
  if (!kid) return 0;
  if (!(grown = realloc(n->kids, (size_t)(n->n_kids + 1) * sizeof *grown))) {
    node_free(kid);
    return fail(ps, "out of memory");
  }
  n->kids = grown;
  n->kids[n->n_kids++] = kid;
  return 1;
}

static void set_add(byteset *s, unsigned c) { s->w[c / 32] |= 1u << (c % 32); }
static int set_has(const byteset *s, unsigned c) { return (s->w[c / 32] >> (c % 32)) & 1u; }

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_word(int c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Adds the class of \d \w \s (negated for the capitals); 0 if c is none of them. */
static int add_class_escape(byteset *s, int c)
{
  int (*test)(int) = NULL;
  unsigned b;
  int neg = c >= 'A' && c <= 'Z';
  switch (c) {
  case 'd': case 'D': test = is_digit; break;
  case 'w': case 'W': test = is_word; break;
  case 's': case 'S': test = is_space; break;
  default: return 0;
  }
  for (b = 0; b < 256; b++)
    if ((test((int)b) != 0) != neg) set_add(s, b);
  return 1;
}

static int new_set(parser *ps, const byteset *s)
{
  byteset *grown = realloc(ps->re->sets, (size_t)(ps->re->n_sets + 1) * sizeof *grown);
  if (!grown) return fail(ps, "out of memory") - 1;
  ps->re->sets = grown;
  grown[ps->re->n_sets] = *s;
  return ps->re->n_sets++;
}

static int hex_value(int c)
{
  return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
}

/* A single-character escape after '\' (ps->p at the character): its byte, or -1 after failing. */
static int char_escape(parser *ps, int in_class)
{
  int c = (unsigned char)*ps->p, h1, h2;
  static const char controls[] = "n\nt\tr\rf\fv\va\a";
  const char *k;
  if (!c) return fail(ps, "a pattern may not end with a backslash") - 1;
  ps->p++;
  for (k = controls; *k; k += 2)
    if (c == k[0]) return (unsigned char)k[1];
  if (in_class && c == 'b') return '\b';
  if (c == 'x') {
    if ((h1 = hex_value(ps->p[0])) < 0 || (h2 = hex_value(ps->p[1])) < 0)
      return fail(ps, "\\x needs two hex digits") - 1;
    ps->p += 2;
    return h1 * 16 + h2;
  }
  if (is_digit(c)) return fail(ps, "backreferences and octal escapes are not supported") - 1;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return fail(ps, "unknown escape (Python re refuses it too)") - 1;
  return c;
}

static node *parse_class(parser *ps)
{
  byteset s;
  int neg = 0, first = 1, prev = -1, idx;
  unsigned b;
  node *n;
  memset(&s, 0, sizeof s);
  if (*ps->p == '^') {
    neg = 1;
    ps->p++;
  }
  for (;;) {
    int c = (unsigned char)*ps->p, lo;
    if (!c) {
      fail(ps, "unterminated character set");
      return NULL;
    }
    if (c == ']' && !first) {
      ps->p++;
      break;
    }
    first = 0;
    ps->p++;
    if (c == '\\') {
      if (add_class_escape(&s, *ps->p)) {
        ps->p++;
        prev = -1;
        if (ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') { /* Python: a class is no range end */
          fail(ps, "bad character range");
          return NULL;
        }
        continue;
      }
      if ((c = char_escape(ps, 1)) < 0) return NULL;
    }
    if (c == '-' && prev >= 0 && *ps->p && *ps->p != ']') {
      int hi = (unsigned char)*ps->p++;
      if (hi == '\\') {
        if (strchr("dDwWsS", *ps->p)) {
          fail(ps, "bad character range");
          return NULL;
        }
        if ((hi = char_escape(ps, 1)) < 0) return NULL;
      }
      if (hi < prev) {
        fail(ps, "bad character range");
        return NULL;
      }
      for (lo = prev; lo <= hi; lo++) set_add(&s, (unsigned)lo);
      prev = -1;
      continue;
    }
    set_add(&s, (unsigned)c);
    prev = c;
  }
  if (neg)
    for (b = 0; b < CLASS_WORDS; b++) s.w[b] = ~s.w[b];
  if ((idx = new_set(ps, &s)) < 0) return NULL;
  n = new_node(ps, N_SET, idx);
  return n;
}

static node *parse_alt(parser *ps, int depth);

/* A decimal count of a {m,n} quantifier; -1 when there are no digits. */
static long parse_count(const char **p)
{
  long v = -1;
  while (is_digit(**p)) {
    v = (v < 0 ? 0 : v) * 10 + (**p - '0');
    if (v > 1000000) v = 1000000;
    (*p)++;
  }
  return v;
}

/* Whether p is a valid {m}, {m,}, {,n} or {m,n}; sets min, max (-1 unbounded) and the length. */
static int brace_quantifier(const char *p, long *min, long *max, size_t *len)
{
  const char *q = p + 1;
  long a = parse_count(&q), b;
  if (*q == '}') {
    if (a < 0) return 0;
    *min = *max = a;
  } else if (*q == ',') {
    q++;
    b = parse_count(&q);
    if (*q != '}') return 0;
    *min = a < 0 ? 0 : a;
    *max = b;
  } else {
    return 0;
  }
  *len = (size_t)(q + 1 - p);
  return 1;
}

static node *parse_atom(parser *ps, int depth)
{
  int c = (unsigned char)*ps->p;
  node *n;
  ps->p++;
  switch (c) {
  case '.': return new_node(ps, N_ANY, 0);
  case '^': return new_node(ps, N_ASSERT, AS_BOL);
  case '$': return new_node(ps, N_ASSERT, AS_EOL);
  case '[': return parse_class(ps);
  case '(': {
    int group = -1;
    if (depth >= MAX_DEPTH) {
      fail(ps, "groups nested too deeply");
      return NULL;
    }
    if (*ps->p == '?') {
      if (ps->p[1] == ':') {
        ps->p += 2;
      } else if (ps->p[1] == 'P' && ps->p[2] == '<') { /* a named group is a numbered group too */
        const char *end = strchr(ps->p + 3, '>');
        if (!end || end == ps->p + 3) {
          fail(ps, "bad group name");
          return NULL;
        }
        ps->p = end + 1;
        group = ++ps->re->groups;
      } else {
        fail(ps, "lookarounds, inline flags, comments, atomic groups and named backreferences are not supported");
        return NULL;
      }
    } else {
      group = ++ps->re->groups;
    }
    if (!(n = new_node(ps, N_GROUP, group))) return NULL;
    if (!add_kid(ps, n, parse_alt(ps, depth + 1))) {
      node_free(n);
      return NULL;
    }
    if (*ps->p != ')') {
      node_free(n);
      fail(ps, "missing ), unterminated subpattern");
      return NULL;
    }
    ps->p++;
    return n;
  }
  case '\\': {
    byteset s;
    int idx;
    static const struct { char c; int kind; } asserts[] = {
      {'A', AS_BEGIN}, {'Z', AS_END}, {'b', AS_WORD_B}, {'B', AS_NOT_WORD_B}};
    size_t k;
    for (k = 0; k < sizeof asserts / sizeof asserts[0]; k++)
      if (*ps->p == asserts[k].c) {
        ps->p++;
        return new_node(ps, N_ASSERT, asserts[k].kind);
      }
    memset(&s, 0, sizeof s);
    if (add_class_escape(&s, *ps->p)) {
      ps->p++;
      if ((idx = new_set(ps, &s)) < 0) return NULL;
      return new_node(ps, N_SET, idx);
    }
    if ((c = char_escape(ps, 0)) < 0) return NULL;
    return new_node(ps, N_CHAR, c);
  }
  case '*': case '+': case '?':
    fail(ps, "nothing to repeat");
    return NULL;
  default:
    return new_node(ps, N_CHAR, c);
  }
}

/* An atom and its quantifiers. */
static node *parse_repeat(parser *ps, int depth)
{
  node *atom = parse_atom(ps, depth), *r;
  long min, max;
  size_t len;
  if (!atom) return NULL;
  for (;;) {
    char c = *ps->p;
    if (c == '*' || c == '+' || c == '?') {
      min = c == '+';
      max = c == '?' ? 1 : -1;
      len = 1;
    } else if (c != '{' || !brace_quantifier(ps->p, &min, &max, &len)) {
      return atom;
    }
    if (atom->kind == N_ASSERT || atom->kind == N_REPEAT) {
      fail(ps, atom->kind == N_REPEAT ? "multiple repeat" : "nothing to repeat");
      node_free(atom);
      return NULL;
    }
    if ((max >= 0 && min > max) || min > OFTAWQ__PYRE_MAX_REPEAT || max > OFTAWQ__PYRE_MAX_REPEAT) {
      fail(ps, min > max && max >= 0 ? "min repeat greater than max repeat" : "a repeat count above 1000");
      node_free(atom);
      return NULL;
    }
    ps->p += len;
    if (!(r = new_node(ps, N_REPEAT, 0))) {
      node_free(atom);
      return NULL;
    }
    r->min = (int)min;
    r->max = (int)max;
    r->greedy = 1;
    if (*ps->p == '?') {
      r->greedy = 0;
      ps->p++;
    } else if (*ps->p == '+') {
      node_free(atom);
      node_free(r);
      fail(ps, "possessive quantifiers are not supported");
      return NULL;
    }
    add_kid(ps, r, atom);
    atom = r;
    if (ps->failed) {
      node_free(atom);
      return NULL;
    }
  }
}

static node *parse_cat(parser *ps, int depth)
{
  node *cat = new_node(ps, N_CAT, 0);
  if (!cat) return NULL;
  while (*ps->p && *ps->p != '|' && *ps->p != ')') {
    if (!add_kid(ps, cat, parse_repeat(ps, depth))) {
      node_free(cat);
      return NULL;
    }
  }
  return cat;
}

static node *parse_alt(parser *ps, int depth)
{
  node *alt = new_node(ps, N_ALT, 0);
  if (!alt) return NULL;
  for (;;) {
    if (!add_kid(ps, alt, parse_cat(ps, depth))) {
      node_free(alt);
      return NULL;
    }
    if (*ps->p != '|') return alt;
    ps->p++;
  }
}

/* ------------------------------------------------------------------ compiler */

static int emit(parser *ps, enum op op, int x, int y)
{
  oftawq__pyre *re = ps->re;
  if (re->n >= OFTAWQ__PYRE_MAX_PROGRAM) return fail(ps, "the pattern is too complex") - 1;
  if (re->n == re->cap) {
    int cap = re->cap ? 2 * re->cap : 64;
    inst *grown = realloc(re->prog, (size_t)cap * sizeof *grown);
    if (!grown) return fail(ps, "out of memory") - 1;
    re->prog = grown;
    re->cap = cap;
  }
  re->prog[re->n].op = op;
  re->prog[re->n].x = x;
  re->prog[re->n].y = y;
  return re->n++;
}

static int compile(parser *ps, const node *n);

/* x? with the given priority: SPLIT over the body; returns the SPLIT's index (its other branch is patched later). */
static int optional_head(parser *ps, int greedy)
{
  int split = emit(ps, OP_SPLIT, 0, 0);
  if (split < 0) return -1;
  if (greedy) ps->re->prog[split].x = split + 1;
  else ps->re->prog[split].y = split + 1;
  return split;
}

static void patch_other(parser *ps, int split, int target, int greedy)
{
  if (greedy) ps->re->prog[split].y = target;
  else ps->re->prog[split].x = target;
}

static int compile_repeat(parser *ps, const node *n)
{
  const node *body = n->kids[0];
  int i, split, *pending, n_pending = 0, ok = 1;
  for (i = 0; i < n->min; i++)
    if (!compile(ps, body)) return 0;
  if (n->max < 0) {
    /* head: SPLIT body, out; MARK r; body; LOOP r, head; out. As Python's sre, an iteration that matched
     * nothing ends the loop there (keeping its captures) instead of trying another. */
    int slot = 2 * (ps->re->groups + 1) + ps->re->loops++;
    if ((split = optional_head(ps, n->greedy)) < 0 || emit(ps, OP_MARK, slot, 0) < 0 || !compile(ps, body) ||
        emit(ps, OP_LOOP, slot, split) < 0)
      return 0;
    patch_other(ps, split, ps->re->n, n->greedy);
    return 1;
  }
  if (!(pending = malloc((size_t)(n->max - n->min + 1) * sizeof *pending))) return fail(ps, "out of memory");
  for (i = n->min; i < n->max && ok; i++) { /* nested optional copies, each tried only after the previous */
    ok = (split = optional_head(ps, n->greedy)) >= 0 && compile(ps, body);
    if (ok) pending[n_pending++] = split;
  }
  for (i = 0; i < n_pending; i++) patch_other(ps, pending[i], ps->re->n, n->greedy);
  free(pending);
  return ok;
}

static int compile(parser *ps, const node *n)
{
  int i;
  switch (n->kind) {
  case N_EMPTY: return 1;
  case N_CHAR: return emit(ps, OP_CHAR, n->value, 0) >= 0;
  case N_ANY: return emit(ps, OP_ANY, 0, 0) >= 0;
  case N_SET: return emit(ps, OP_CLASS, n->value, 0) >= 0;
  case N_ASSERT: return emit(ps, OP_ASSERT, n->value, 0) >= 0;
  case N_GROUP:
    if (n->value >= 0 && emit(ps, OP_SAVE, 2 * n->value, 0) < 0) return 0;
    if (!compile(ps, n->kids[0])) return 0;
    return n->value < 0 || emit(ps, OP_SAVE, 2 * n->value + 1, 0) >= 0;
  case N_CAT:
    for (i = 0; i < n->n_kids; i++)
      if (!compile(ps, n->kids[i])) return 0;
    return 1;
  case N_ALT: {
    int *jumps, n_jumps = 0, ok = 1;
    if (n->n_kids == 1) return compile(ps, n->kids[0]);
    if (!(jumps = malloc((size_t)n->n_kids * sizeof *jumps))) return fail(ps, "out of memory");
    for (i = 0; i < n->n_kids && ok; i++) {
      int split = -1;
      if (i + 1 < n->n_kids) ok = (split = emit(ps, OP_SPLIT, 0, 0)) >= 0;
      if (ok && split >= 0) ps->re->prog[split].x = split + 1;
      ok = ok && compile(ps, n->kids[i]);
      if (ok && i + 1 < n->n_kids) ok = (jumps[n_jumps++] = emit(ps, OP_JMP, 0, 0)) >= 0;
      if (ok && split >= 0) ps->re->prog[split].y = ps->re->n;
    }
    for (i = 0; ok && i < n_jumps; i++) ps->re->prog[jumps[i]].x = ps->re->n;
    free(jumps);
    return ok;
  }
  case N_REPEAT: return compile_repeat(ps, n);
  }
  return fail(ps, "internal error");
}

oftawq__pyre *oftawq__pyre_compile(const char *pattern, char *why, size_t cap)
{
  parser ps;
  node *tree;
  oftawq__pyre *re;
  if (!pattern) {
    oftawq__why(why, cap, OFTAWQ_E_INVALID_ARGUMENT, "NULL pattern");
    return NULL;
  }
  if (strlen(pattern) > OFTAWQ__PYRE_MAX_PATTERN) {
    oftawq__why(why, cap, OFTAWQ_E_UNSUPPORTED, "a pattern longer than %d bytes", OFTAWQ__PYRE_MAX_PATTERN);
    return NULL;
  }
  if (!(re = calloc(1, sizeof *re))) {
    oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    return NULL;
  }
  memset(&ps, 0, sizeof ps);
  ps.p = pattern;
  ps.re = re;
  ps.why = why;
  ps.cap = cap;
  tree = parse_alt(&ps, 0);
  if (tree && *ps.p == ')') fail(&ps, "unbalanced parenthesis");
  /* group 0 is the whole match */
  if (tree && !ps.failed && emit(&ps, OP_SAVE, 0, 0) >= 0 && compile(&ps, tree) && emit(&ps, OP_SAVE, 1, 0) >= 0)
    emit(&ps, OP_MATCH, 0, 0);
  node_free(tree);
  if (ps.failed || !tree) {
    if (!ps.failed) oftawq__why(why, cap, OFTAWQ_E_OUT_OF_MEMORY, "out of memory");
    oftawq__pyre_free(re);
    return NULL;
  }
  return re;
}

void oftawq__pyre_free(oftawq__pyre *re)
{
  if (!re) return;
  free(re->prog);
  free(re->sets);
  free(re);
}

int oftawq__pyre_groups(const oftawq__pyre *re) { return re ? re->groups : 0; }

/* ------------------------------------------------------------------ matcher */

/* A backtracking job: try (pc, pos), or restore capture slot `slot` to `value` (slot >= 0). */
typedef struct job {
  int pc, slot;
  long pos;
} job;

static int assertion_holds(int kind, const char *t, long pos, long len)
{
  int before = pos > 0 && is_word((unsigned char)t[pos - 1]), after = pos < len && is_word((unsigned char)t[pos]);
  switch (kind) {
  case AS_BOL:
  case AS_BEGIN: return pos == 0;
  case AS_EOL: return pos == len || (pos == len - 1 && t[pos] == '\n');
  case AS_END: return pos == len;
  case AS_WORD_B: return before != after;
  default: return before == after;
  }
}

int oftawq__pyre_match(const oftawq__pyre *re, const char *text, int full, int group, long *start, long *end)
{
  long len = (long)strlen(text), *caps = NULL, pos;
  size_t n_caps = (size_t)(2 * (re->groups + 1) + re->loops), words, top = 0, cap_jobs = 64;
  unsigned char *visited = NULL;
  job *jobs = NULL;
  int result = -1, pc;
  if (start) *start = -1;
  if (end) *end = -1;
  if (len > OFTAWQ__PYRE_MAX_TEXT) return -1;
  words = ((size_t)re->n * (size_t)(len + 1) + 7) / 8;
  visited = calloc(words ? words : 1, 1);
  caps = malloc(n_caps * sizeof *caps);
  jobs = malloc(cap_jobs * sizeof *jobs);
  if (!visited || !caps || !jobs) goto done;
  for (pc = 0; pc < (int)n_caps; pc++) caps[pc] = -1;
  jobs[top].pc = 0, jobs[top].pos = 0, jobs[top].slot = -1, top++;
  result = 0;
  while (top > 0 && result == 0) {
    job j = jobs[--top];
    if (j.slot >= 0) {
      caps[j.slot] = j.pos;
      continue;
    }
    pc = j.pc;
    pos = j.pos;
    for (;;) {
      /* every (pc, pos) is explored once: a second arrival has lower priority and no other future (a LOOP,
       * whose choice also depends on where its iteration began, is not memoised: from its head the exit is
       * reachable too, so the states after it still have no other future) */
      size_t bit = (size_t)pc * (size_t)(len + 1) + (size_t)pos;
      const inst *in = &re->prog[pc];
      if (in->op == OP_LOOP) {
        pc = pos == caps[in->x] ? pc + 1 : in->y;
        continue;
      }
      if (visited[bit / 8] & (1u << (bit % 8))) break;
      visited[bit / 8] |= (unsigned char)(1u << (bit % 8));
      if (in->op == OP_CHAR) {
        if (pos >= len || (unsigned char)text[pos] != in->x) break;
        pc++, pos++;
      } else if (in->op == OP_ANY) {
        if (pos >= len || text[pos] == '\n') break;
        pc++, pos++;
      } else if (in->op == OP_CLASS) {
        if (pos >= len || !set_has(&re->sets[in->x], (unsigned char)text[pos])) break;
        pc++, pos++;
      } else if (in->op == OP_ASSERT) {
        if (!assertion_holds(in->x, text, pos, len)) break;
        pc++;
      } else if (in->op == OP_JMP) {
        pc = in->x;
      } else if (in->op == OP_SPLIT || in->op == OP_SAVE || in->op == OP_MARK) {
        if (top + 1 >= cap_jobs) {
          job *grown = realloc(jobs, 2 * cap_jobs * sizeof *grown);
          if (!grown) {
            result = -1;
            break;
          }
          jobs = grown;
          cap_jobs *= 2;
        }
        if (in->op == OP_SPLIT) {
          jobs[top].pc = in->y, jobs[top].pos = pos, jobs[top].slot = -1, top++;
          pc = in->x;
        } else {
          jobs[top].pc = 0, jobs[top].pos = caps[in->x], jobs[top].slot = in->x, top++;
          caps[in->x] = pos;
          pc++;
        }
      } else { /* OP_MATCH */
        if (full && pos != len) break;
        result = 1;
        if (group >= 0 && group <= re->groups) {
          if (start) *start = caps[2 * group];
          if (end) *end = caps[2 * group + 1];
          if (start && end && (*start < 0 || *end < 0)) *start = *end = -1;
        }
        break;
      }
    }
  }
done:
  free(visited);
  free(caps);
  free(jobs);
  return result;
}
