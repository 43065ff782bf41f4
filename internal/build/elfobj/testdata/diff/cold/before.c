/*
 * A change in the cold part GCC splits off a function (guarded.cold) is a
 * change of that function.
 */
extern void __attribute__((cold)) report(const char *, int);
extern void __attribute__((noreturn)) fatal(int);
extern int work(int);

int guarded(int x)
{
	int r = work(x);

	if (__builtin_expect(r < 0, 0)) {
		report("guarded failed", r);
		fatal(r + 1);
	}
	return r * 2;
}

int plain(int x)
{
	return work(x) + 1;
}
