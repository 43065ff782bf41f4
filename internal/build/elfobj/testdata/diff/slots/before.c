/* An ops table whose fix repoints, sets and clears callbacks, beside
 * tables whose other changes are not repointing. */
struct ops {
	int (*open)(int);
	int (*peek)(int);
	int (*close)(int);
	long flags;
};

extern int generic_peek(int);
extern int shared_close(int);

static int ops_open(int x) { return x + 1; }
static int old_close(int x) { return x - 1; }

struct ops table = { .open = ops_open, .peek = generic_peek, .close = old_close, .flags = 1 };
struct ops flagged = { .open = ops_open, .flags = 1 };
static const struct ops ro_table = { .open = ops_open };
int limit = 3;
struct dataptr { int *p; int (*f)(int); } dp = { .p = 0, .f = ops_open };

const struct ops *use(int i) { return i ? &table : &flagged; }
const struct ops *use_ro(void) { return &ro_table; }
int vals[4] = { 0, 1, 2, 3 };
extern int ext_vals[];
struct bounds { int *lo, *hi; } bounds = { .lo = &vals[1] };
struct code { void *at; } inside = { .at = (char *)ops_open };
