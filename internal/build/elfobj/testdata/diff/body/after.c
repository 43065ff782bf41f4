/* (a) a function body changes. */
int add(int a, int b)
{
	return a - b;
}

int triple(int x)
{
	return x * 3;
}
