cmd_fs/ext4/inode.o := gcc-12 -Wp,-MMD,fs/ext4/.inode.o.d -nostdinc -I./arch/x86/include -I./arch/x86/include/generated 

source_fs/ext4/inode.o := fs/ext4/inode.c

deps_fs/ext4/inode.o := \
    $(wildcard include/config/QUOTA) \
    $(wildcard include/config/FS_ENCRYPTION) \
  include/linux/compiler-version.h \

