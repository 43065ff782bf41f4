/*
 * (d) A static function gets a .constprop clone once all callers pass the
 * same constant.
 */
struct big {
	int a, b, c, d;
	long pad[8];
};
extern void sink(int);

static __attribute__((noinline)) void helper(struct big *p, int k)
{
	sink(p->a * k);
	sink(p->b + k);
}

void use1(struct big *p)
{
	helper(p, 3);
}

void use2(struct big *p)
{
	helper(p, 3);
}

int bystander(int x)
{
	return x + 11;
}
