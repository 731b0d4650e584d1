/* godwit's version and the protocol versions it speaks. */
#ifndef GODWIT_VERSION_H
#define GODWIT_VERSION_H
#define GODWIT_VERSION "0.1.0"
#endif
