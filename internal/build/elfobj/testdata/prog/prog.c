/*
 * A program whose object the writer tests edit: they define added_value
 * and added_fn (a pointer to helper) in new sections, then link and run it.
 */
#include <stdio.h>

extern long added_value;
extern int (*added_fn)(int);

static __attribute__((noipa)) int helper(int x)
{
	return x * 7;
}

int unused_fn(int x)
{
	return x + 1;
}

int main(int argc, char **argv)
{
	(void)argv;
	printf("%d %ld %d\n", helper(argc + 5), added_value, added_fn(argc + 2));
	return 0;
}
