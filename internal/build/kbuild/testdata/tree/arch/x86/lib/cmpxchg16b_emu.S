/* Empty stand-in for arch/x86/lib/cmpxchg16b_emu.S of Linux 6.1.176. */
