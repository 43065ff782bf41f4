/* shadowed by arch/x86/include/asm/ord.h */
