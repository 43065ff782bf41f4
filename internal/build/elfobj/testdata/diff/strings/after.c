/*
 * (c) String literals: first's literal grows, which moves the literals after
 * it in the same merge section (second uses one of them: unchanged); third's
 * literal changes in place (same length: changed).
 */
extern int puts(const char *);
extern int printf(const char *, ...);

static inline void say(const char *s)
{
	printf("say: %s\n", s);
}

const char *table[] = { "t-one", "t-two" };

void first(void)
{
	puts("alphabet");
	say("one");
}

void second(void)
{
	puts("beta");
	say("two");
	puts("t-one");
}

void third(void)
{
	puts("gammA");
}
