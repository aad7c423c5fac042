/* unit.h - tiny assertion helpers for the C unit tests (exit 1 on failure). */
#ifndef SCIMG_UNIT_H
#define SCIMG_UNIT_H
#include <stdio.h>
#include <stdlib.h>

static int unit_failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		unit_failures++; \
	} \
} while (0)

#define UNIT_DONE() do { \
	if (unit_failures) { \
		fprintf(stderr, "%d check(s) failed\n", unit_failures); \
		return 1; \
	} \
	printf("all checks passed\n"); \
	return 0; \
} while (0)
#endif
