// Runs blocking work off an io_context: the coroutine awaits `fn()` run on another executor (a
// thread pool) and resumes on its own executor with the result. The I/O thread stays free for
// health checks and long polls while a handler waits for disk, S3 or another server.
#pragma once

#include <type_traits>
#include <utility>

#include "net/asio.h"

namespace cortex::net {

// `fn` must not throw (catch inside it); its result is moved back to the awaiting coroutine.
template <typename Executor, typename F>
asio::awaitable<std::invoke_result_t<F&>> Offload(Executor pool, F fn) {
  using T = std::invoke_result_t<F&>;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [pool, fn = std::move(fn)](auto handler) mutable {
        auto home = asio::get_associated_executor(handler);
        asio::post(pool, [fn = std::move(fn), handler = std::move(handler), home]() mutable {
          T result = fn();
          asio::post(home, [handler = std::move(handler), result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable);
}

}  // namespace cortex::net
