/* (g) An inlined static helper changes: its callers change. */
static inline int scale(int x)
{
	return x * 3 + 1;
}

int a(int x)
{
	return scale(x) + 1;
}

int b(int x)
{
	return scale(x) - 7;
}

int c(int x)
{
	return x - 7;
}
