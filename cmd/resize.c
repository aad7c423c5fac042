#include "cmd.h"
int cmd_resize(int argc, char **argv) { (void)argc; (void)argv; return EXIT_ERROR; }
