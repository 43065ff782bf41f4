cmd_arch/x86/kvm/../../../virt/kvm/eventfd.o := gcc-12 -Wp,-MMD,arch/x86/kvm/../../../virt/kvm/.eventfd.o.d -nostdinc -I./arch/x86/include -I./arch/x86/include/generated  -I./include -I./arch/x86/incl

source_arch/x86/kvm/../../../virt/kvm/eventfd.o := arch/x86/kvm/../../../virt/kvm/eventfd.c

deps_arch/x86/kvm/../../../virt/kvm/eventfd.o := \
    $(wildcard include/config/HAVE_KVM_IRQFD) \
    $(wildcard include/config/HAVE_KVM_IRQ_BYPASS) \
  include/linux/compiler-version.h \
    $(wildcard include/config/CC_VERSION_TEXT) \
  include/linux/kconfig.h \
    $(wildcard include/config/CPU_BIG_ENDIAN) \
    $(wildcard include/config/BOOGER) \


arch/x86/kvm/../../../virt/kvm/eventfd.o: $(deps_arch/x86/kvm/../../../virt/kvm/eventfd.o)

$(deps_arch/x86/kvm/../../../virt/kvm/eventfd.o):

