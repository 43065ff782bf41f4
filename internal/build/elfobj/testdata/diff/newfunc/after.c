/* (f) A new function is added. */
int base(int x)
{
	return x + 1;
}

int extra(int x)
{
	return x ^ 0x55;
}
