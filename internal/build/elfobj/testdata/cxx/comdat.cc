// C++ inline functions and templates land in COMDAT groups (SHT_GROUP
// sections), which the writer must carry through with their members.
template <typename T> struct box {
	T v;
	__attribute__((noinline)) T get() const { return v * 2; }
};

inline __attribute__((noinline)) int twice(int x) { return x * 2; }

int use_box(int x)
{
	box<int> b{x};
	box<long> c{x};
	return b.get() + int(c.get()) + twice(x);
}
