#include "io/png_image.h"
