#include <priv.h>
#include <common.h>
#ifdef WITH_EXTRA
#include "extra.h"
#endif
