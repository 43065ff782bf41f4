/*
 * (b) Only __LINE__ changes where it is passed to a line-taking function, in
 * a WARN-like __bug_table entry or in a dynamic-debug-like descriptor.
 */
extern void __might_sleep(const char *file, int line);
extern void __might_resched(const char *file, int line, unsigned int offsets);
extern void report(const char *file, int line);
extern void trace(const void *desc);
extern void __warn_printk(const char *fmt, ...);
extern int work(int);

/* A stand-in for WARN_ON(): ud2 plus a 12-byte __bug_table entry. */
#define FAKE_WARN(flags)                                                 \
	asm volatile("1: ud2\n"                                          \
		     ".pushsection __bug_table,\"aw\"\n"                \
		     "2: .long 1b - .\n"                                 \
		     ".long %c0 - .\n"                                   \
		     ".word %c1\n"                                       \
		     ".word %c2\n"                                       \
		     ".org 2b + 12\n"                                    \
		     ".popsection"                                       \
		     : : "i"(__FILE__), "i"(__LINE__), "i"(flags))

/* A stand-in for pr_debug(): a descriptor in __dyndbg with a line field. */
struct desc {
	const char *modname, *function, *filename, *format;
	unsigned int lineno : 18, class_id : 6, flags : 8;
};
#define FAKE_DEBUG(fmt)                                                   \
	do {                                                              \
		static struct desc __attribute__((section("__dyndbg"), used)) \
		d = { "m", __func__, __FILE__, fmt, __LINE__, 0, 0 };     \
		trace(&d);                                                \
	} while (0)

int sleepy(int x)
{
	__might_sleep(__FILE__, __LINE__);
	return work(x);
}

int resched(int x)
{
	__might_resched(__FILE__, __LINE__, 0);
	return work(x + 1);
}

/* report() is not known to take a line: a change counts. */
int reported(int x)
{
	report(__FILE__, __LINE__);
	return work(x + 2);
}

/* The offsets argument is not a line number. */
int offsets(int x)
{
	__might_resched(__FILE__, 77, 0);
	return work(x + 3);
}

int warner(int x)
{
	if (x > 5)
		FAKE_WARN(0);
	return work(x + 4);
}

/* WARN_ON() → WARN_ON_ONCE(): same code, other __bug_table flags. */
int warn_once(int x)
{
	if (x > 6)
		FAKE_WARN(0);
	return work(x + 5);
}

int debugged(int x)
{
	FAKE_DEBUG("debugged %d\n");
	return work(x + 6);
}

int debug_fmt(int x)
{
	FAKE_DEBUG("old format %d\n");
	return work(x + 7);
}

/* WARN(c, "...%d", __LINE__) on x86 passes the line to __warn_printk. */
int warn_fmt(int x)
{
	if (x > 8)
		__warn_printk("at line %d\n", __LINE__);
	return work(x + 8);
}
