// Empty stand-in for drivers/net/virtio_net.c of Linux 6.1.176.
