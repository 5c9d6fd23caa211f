#include "pipeline/qa_images.h"
