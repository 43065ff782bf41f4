/*
 * (e) Data objects: an initialized global changes value, a zero-initialized
 * array grows, a pointer changes target, a new global appears.
 */
int limit = 20;
int other = 1;
static char buf[32];
const int table[4] = { 1, 2, 3, 4 };
int *ptr = &other;
int fresh = 1;

int get(int i)
{
	return limit + buf[i] + table[i & 3];
}

void put(int i, char c)
{
	buf[i] = c;
}
