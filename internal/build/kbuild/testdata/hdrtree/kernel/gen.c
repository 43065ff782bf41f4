/* Includes a header the build generates: its tests stay open. */
#include "generated-here.h"
#include <linux/conds.h>
