#ifndef _LINUX_B_H
#define _LINUX_B_H
#include <linux/a.h>
#include <asm/ord.h>
#include <asm/gen.h>
#include <asm/fallback.h>
#include <linux/uonly.h>
#endif
