/* forced on C compile lines only */
#ifndef __ASSEMBLY__
#ifdef __clang__
#include <linux/compiler-clang.h>
#elif defined(__GNUC__)
#include <linux/compiler-gcc.h>
#endif
#endif
