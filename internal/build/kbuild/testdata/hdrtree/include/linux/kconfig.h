/* forced on every compile line */
#include <generated/autoconf.h>
