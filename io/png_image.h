// PNG pictures through OpenCV: issue 5. Work in progress.
#pragma once
