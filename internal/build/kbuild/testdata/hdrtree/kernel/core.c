// SPDX-License-Identifier: GPL-2.0
/*
 * #include <linux/in-comment.h>
 */
#define CREATE_TRACE_POINTS
#define GEN_FILE <linux/macro-target.h>
#include "local.h" /* next to this file */
#include "linux/dup.h"
#include <linux/a.h>
#include <linux/conds.h>
#include <trace/events/ev.h>
#include GEN_FILE
#include "core-tables.c"
