// Placeholder: filled in by the issue-6 work in progress (see src/bench/CMakeLists.txt).
namespace m4::bench {}
