#define DEBUG
#include <linux/dup.h>
#include <trace/events/ev.h>
#include <linux/conds.h>
