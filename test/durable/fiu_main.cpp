// The runner of test_durable_fiu.cpp: flush failures made by libfiu's POSIX preload
// (fiu_posix_preload.so), so that the real libc call (msync, fsync) returns the error,
// as the kernel's would. The runner re-executes itself with the preload in LD_PRELOAD
// when it is not there yet (after a sanitizer's runtime, which must come first), so it
// runs the same from meson and by hand. SHMQ_FIU_POSIX_PRELOAD comes from meson.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fiu-control.h>
#include <fiu.h>
#include <initializer_list>
#include <link.h>
#include <string>
#include <unistd.h>

namespace {

// The names of the objects loaded that contain one of `parts`, joined by ':'.
std::string loaded_objects(std::initializer_list<const char*> parts) {
  struct search {
    std::initializer_list<const char*> parts;
    std::string found;
  } s{parts, {}};
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        auto& s = *static_cast<search*>(out);
        const char* name = info->dlpi_name;
        for (const char* part : s.parts)
          if (name != nullptr && std::strstr(name, part) != nullptr) {
            s.found += std::string(s.found.empty() ? "" : ":") + name;
            break;
          }
        return 0;
      },
      &s);
  return s.found;
}

// Whether the preload is loaded (the first test case checks that it does fail msync and
// fsync: a sanitizer's interceptor may come first, and calls on to it).
bool preload_in_place() { return !loaded_objects({"fiu_posix_preload"}).empty(); }

// A sanitizer runtime loaded as a dependency (gcc's -fsanitize=address): it has to stay
// the first object after the program, so it goes before the preload.
std::string sanitizer_runtime() { return loaded_objects({"libasan.so", "libtsan.so", "libubsan.so"}); }

}  // namespace

int main(int argc, char** argv) {
  if (!preload_in_place()) {
    if (std::getenv("SHMQ_FIU_REEXECUTED") != nullptr) {
      std::fprintf(stderr, "test-durable-fiu: %s is in LD_PRELOAD but was not loaded\n",
                   SHMQ_FIU_POSIX_PRELOAD);
      return 1;
    }
    std::string preload = sanitizer_runtime();
    preload += std::string(preload.empty() ? "" : ":") + SHMQ_FIU_POSIX_PRELOAD;
    if (const char* before = std::getenv("LD_PRELOAD"); before != nullptr && *before != '\0')
      preload += std::string(":") + before;
    ::setenv("LD_PRELOAD", preload.c_str(), 1);
    ::setenv("SHMQ_FIU_REEXECUTED", "1", 1);
    ::execv("/proc/self/exe", argv);
    std::perror("test-durable-fiu: re-executing itself with the libfiu preload");
    return 1;
  }
  if (fiu_init(0) != 0) {
    std::fprintf(stderr, "test-durable-fiu: fiu_init failed\n");
    return 1;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
