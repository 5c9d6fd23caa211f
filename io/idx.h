// IDX files (the MNIST / Fashion-MNIST format): issue 4. Work in progress.
#pragma once
