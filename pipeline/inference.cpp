#include "pipeline/inference.h"
