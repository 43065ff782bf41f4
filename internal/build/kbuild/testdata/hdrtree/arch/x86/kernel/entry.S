/* An assembly unit: __ASSEMBLY__ is defined, compiler_types.h is not forced. */
#include <linux/both.h>
