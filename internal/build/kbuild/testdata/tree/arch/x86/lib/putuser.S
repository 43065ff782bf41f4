/* Empty stand-in for arch/x86/lib/putuser.S of Linux 6.1.176. */
