/*
 * (d) A static function gets an .isra clone (its pointer argument replaced
 * by the fields it reads) once its address is no longer taken.
 */
struct s {
	int a, b;
	int pad[10];
};

static __attribute__((noinline)) int reader(struct s *p)
{
	return p->a * 3 + p->b;
}


int read1(struct s *p)
{
	return reader(p) + 1;
}
