/* check_version.c: PEP 440 ordering against the table written by Python's packaging (tests/gen/gen_pep440.py). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oftawq.h"
#include "testutil.h"

START_TEST(table_from_packaging)
{
  char *path = tu_srcpath("tests/fixtures/pep440.tsv");
  FILE *f = fopen(path, "r");
  char line[512];
  int pairs = 0, invalid = 0;
  ck_assert_msg(f != NULL, "cannot open %s", path);
  while (fgets(line, sizeof line, f)) {
    char *fields[4] = {0};
    char *p = line;
    int n = 0, result = 99;
    line[strcspn(line, "\n")] = '\0';
    while (n < 4) {
      fields[n++] = p;
      p = strchr(p, '\t');
      if (!p) break;
      *p++ = '\0';
    }
    if (!strcmp(fields[0], "cmp")) {
      int expected = atoi(fields[3]), reverse = 99;
      ck_assert_msg(oftawq_version_compare(fields[1], fields[2], &result) == OFTAWQ_OK, "'%s' vs '%s'", fields[1],
                    fields[2]);
      ck_assert_msg(result == expected, "'%s' vs '%s': got %d, packaging says %d", fields[1], fields[2], result,
                    expected);
      ck_assert_int_eq(oftawq_version_compare(fields[2], fields[1], &reverse), OFTAWQ_OK);
      ck_assert_int_eq(reverse, -expected);
      pairs++;
    } else {
      ck_assert_str_eq(fields[0], "invalid");
      ck_assert_msg(oftawq_version_compare(fields[1], "1.0", &result) == OFTAWQ_E_INVALID_ARGUMENT,
                    "'%s' should be invalid", fields[1]);
      ck_assert_int_eq(oftawq_version_compare("1.0", fields[1], &result), OFTAWQ_E_INVALID_ARGUMENT);
      ck_assert_int_eq(result, 99); /* untouched on error */
      invalid++;
    }
  }
  fclose(f);
  free(path);
  ck_assert_int_ge(pairs, 150);
  ck_assert_int_ge(invalid, 20);
}
END_TEST

START_TEST(spec_examples)
{
  int r = 5;
  ck_assert_int_eq(oftawq_version_compare("0.2", "0.2.0", &r), OFTAWQ_OK);
  ck_assert_int_eq(r, 0);
  ck_assert_int_eq(oftawq_version_compare("0.2.0.dev1", "0.2.0a1", &r), OFTAWQ_OK);
  ck_assert_int_eq(r, -1);
  ck_assert_int_eq(oftawq_version_compare("0.2.0+cu121", "0.2.0", &r), OFTAWQ_OK);
  ck_assert_int_eq(r, 1);
  ck_assert_int_eq(oftawq_version_compare("1!0.1", "9.9", &r), OFTAWQ_OK);
  ck_assert_int_eq(r, 1);
  ck_assert_int_eq(oftawq_version_compare(NULL, "1", &r), OFTAWQ_E_INVALID_ARGUMENT);
  ck_assert_int_eq(oftawq_version_compare("1", "1", NULL), OFTAWQ_E_INVALID_ARGUMENT);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("version");
  TCase *tc = tcase_create("pep440");
  tcase_add_test(tc, table_from_packaging);
  tcase_add_test(tc, spec_examples);
  suite_add_tcase(s, tc);
  return tu_run(s);
}
