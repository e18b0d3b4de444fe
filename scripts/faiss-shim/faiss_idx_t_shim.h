// housekeeper: forced into every faiss-node translation unit with -include (see
// CMakeLists.txt next to this file). FAISS 1.7.3 declares idx_t only inside
// faiss::Index; faiss-node 0.5.1 is written against FAISS >= 1.7.4, where it is
// faiss::idx_t.
#pragma once
#include <faiss/Index.h>

namespace faiss {
using idx_t = Index::idx_t;
}
