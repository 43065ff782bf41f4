#define CONFIG_Y 1
