#ifdef __ASSEMBLY__
#include <asm/asm-only.h>
#else
#include <linux/c-only.h>
#endif
