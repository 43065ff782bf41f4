// SPDX-License-Identifier: GPL-2.0-only
/*
 * rtmutex API
 * (excerpt of Linux 6.1.176)
 */
#include <linux/spinlock.h>
#include <linux/export.h>

#define RT_MUTEX_BUILD_MUTEX
#define WW_RT
#include "rtmutex.c"
