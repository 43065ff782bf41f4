/* (f) A new function is added. */
int base(int x)
{
	return x + 1;
}
