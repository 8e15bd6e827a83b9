/* pyre.h: internal interface of pyre.c - the part of Python's `re` that PEFT's module targeting uses. */
#ifndef OFTAWQ_PYRE_H
#define OFTAWQ_PYRE_H

#include <stddef.h>

/* Longest pattern and most compiled instructions accepted (a pattern is a config value: bounded). */
#define OFTAWQ__PYRE_MAX_PATTERN 4096
#define OFTAWQ__PYRE_MAX_PROGRAM 20000
/* Longest text matched (module names): the matcher keeps one bit per instruction and text position. */
#define OFTAWQ__PYRE_MAX_TEXT 4096
/* Largest {m,n} count. */
#define OFTAWQ__PYRE_MAX_REPEAT 1000

typedef struct oftawq__pyre oftawq__pyre;

/* Compiles a Python regular expression: literals and escapes, ., classes [...] with ranges, \d \w \s and
 * their negations, ^ $ \A \Z \b \B, groups (...) and (?:...), |, and the greedy and lazy quantifiers * + ?
 * {m} {m,} {m,n} {,n}. Anything else (lookarounds, backreferences, named groups, inline flags, possessive
 * quantifiers) is refused, with the reason in `why`. Names are matched byte by byte (\d, \w, \s are the
 * ASCII classes). NULL when refused or out of memory. */
oftawq__pyre *oftawq__pyre_compile(const char *pattern, char *why, size_t why_capacity);
void oftawq__pyre_free(oftawq__pyre *re);

/* re.fullmatch (full != 0) or re.match (anchored at the start only) on `text`, with Python's priorities
 * (leftmost alternative first, greedy or lazy as written), in time linear in the text for a given pattern.
 * Returns 1 on a match, 0 on none, -1 when out of memory or the text is longer than OFTAWQ__PYRE_MAX_TEXT. On a match, group `group` (1..) is written as
 * [*start, *end) when the caller asks for it (start, end may be NULL); -1, -1 when it did not take part.
 * Known difference: a group repeated by * or + whose iterations can match the empty string ("(a*)*") may
 * capture another iteration than Python's does; whether and where the pattern matches is the same. */
int oftawq__pyre_match(const oftawq__pyre *re, const char *text, int full, int group, long *start, long *end);

/* The number of capturing groups. */
int oftawq__pyre_groups(const oftawq__pyre *re);

#endif /* OFTAWQ_PYRE_H */
