/**
 * The effect/cluster a server process belongs to, where its session actors live.
 *
 * - On the embedded database the process is the only runner: every shard, so every session,
 *   is its own.
 * - On PostgreSQL every process is a socket runner of one cluster. It listens for other
 *   runners on its runner address, which it advertises in the `cluster_runners` table, holds
 *   its share of the shards under locks in `cluster_locks`, and reaches sessions owned by other
 *   processes over TCP. Any process accepts any request.
 *
 * The timings below are tuned so that a killed runner's shards move within 10 s: a runner
 * that stops refreshing its heartbeat and shard locks loses them after {@link lockExpiration},
 * the survivors ping each other every 2 s, and look at the runners every second. A runner
 * stopped by SIGTERM unregisters at once, lets its sessions finish their turns, then releases
 * its shards.
 *
 * Shard locks are rows of `cluster_locks`, not PostgreSQL advisory locks: advisory locks are
 * per database, not per schema, so two clusters in two schemas of one database (two
 * deployments, or parallel test runs) would take each other's shards.
 */
import * as NodeCrypto from "@effect/platform-node/NodeCrypto"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as RunnerAddress from "effect/cluster/RunnerAddress"
import * as RunnerHealth from "effect/cluster/RunnerHealth"
import * as Runners from "effect/cluster/Runners"
import * as Sharding from "effect/cluster/Sharding"
import * as ShardingConfig from "effect/cluster/ShardingConfig"
import * as SocketRunner from "effect/cluster/SocketRunner"
import * as SqlMessageStorage from "effect/cluster/SqlMessageStorage"
import * as SqlRunnerStorage from "effect/cluster/SqlRunnerStorage"
import * as RpcClient from "effect/rpc/RpcClient"
import * as RpcSerialization from "effect/rpc/RpcSerialization"
import { Socket } from "effect/socket/Socket"
import { SocketServer } from "effect/socket/SocketServer"
import { type AppConfig, Database } from "@polyagent/runtime"
import * as SqlClient from "effect/sql/SqlClient"

/** How long a runner that stops refreshing its heartbeat and shard locks keeps them. */
export const lockExpiration = Duration.seconds(6)

/** Settings shared by both kinds of runner; effect/cluster's own defaults otherwise. */
const shardingSettings = (config: AppConfig.AppConfigValue): Partial<ShardingConfig.ShardingConfig["Service"]> => ({
  entityMaxIdleTime: config.sessions.maxIdle,
  maxResidentEntities: config.sessions.maxResident,
  // A stopping runner lets its sessions finish the turns they are running for this long.
  entityTerminationTimeout: config.server.shutdownGrace,
  // Fewer, larger shards than effect's 300: a stopping runner releases its shards one statement
  // each, and a burst of hundreds delays the heartbeat that keeps its other locks alive.
  shardsPerGroup: 64,
  shardLockExpiration: lockExpiration,
  shardLockRefreshInterval: Duration.seconds(2),
  shardLockDisableAdvisory: true,
  refreshAssignmentsInterval: Duration.seconds(1),
  runnerHealthCheckInterval: Duration.seconds(2),
  // Local messages are passed as they are; serialising them (a testing aid) costs every turn.
  simulateRemoteSerialization: false
})

/**
 * Runners, heartbeats and shard locks, on the database's control connections: behind the
 * requests' queries, a lock refreshed late would be lost and its sessions stopped mid-turn.
 */
const runnerStorage = SqlRunnerStorage.layerStorage({}).pipe(
  Layer.provide(Layer.effect(SqlClient.SqlClient, Effect.service(Database.ControlClient)))
)

/**
 * The embedded runner: all shards in this process, runner and message storage in the
 * embedded database.
 */
const layerSingle = (config: AppConfig.AppConfigValue) =>
  Sharding.layer.pipe(
    Layer.provideMerge(Runners.layerNoop),
    Layer.provideMerge(SqlMessageStorage.layerStorage({})),
    Layer.provide([runnerStorage, RunnerHealth.layerNoop]),
    Layer.provideMerge(ShardingConfig.layer(shardingSettings(config))),
    Layer.provide(NodeCrypto.layerDigest)
  )

/**
 * The client side of the runner protocol: a TCP connection per peer runner, with Nagle's
 * algorithm off (effect's own layer leaves it on, and streamed chunks then wait ~40 ms each).
 */
const layerClientProtocol = Layer.effect(
  Runners.RpcClientProtocol,
  Effect.gen(function* () {
    const serialization = yield* RpcSerialization.RpcSerialization
    return {
      codecFor: serialization.codecFor,
      make: Effect.fnUntraced(function* (address: RunnerAddress.RunnerAddress) {
        const socket = yield* NodeSocket.makeNet({
          host: address.host,
          port: address.port,
          noDelay: true,
          openTimeout: 1000,
          timeout: 5500
        })
        return yield* RpcClient.makeProtocolSocket().pipe(
          Effect.provideService(Socket, socket),
          Effect.provideService(RpcSerialization.RpcSerialization, serialization)
        )
      }, Effect.orDie)
    }
  })
)

/** The runner's address as configured; port `0` picks a free one when the socket listens. */
const runnerEndpoint = (config: AppConfig.AppConfigValue, workerIndex: number) => {
  const host = config.cluster.runnerHost ?? "127.0.0.1"
  return {
    advertised: host,
    listen: config.cluster.listenHost ?? host,
    // Workers of one process group each need a port: a configured one is the first worker's.
    port: config.cluster.runnerPort === null ? 0 : config.cluster.runnerPort + workerIndex
  }
}

/**
 * A socket runner of the cluster on PostgreSQL. The runner socket listens first (on a free
 * port unless one is configured); the address it got is the one advertised.
 */
const layerSocket = (config: AppConfig.AppConfigValue, workerIndex: number) => {
  const endpoint = runnerEndpoint(config, workerIndex)
  // `exclusive`: under node:cluster a worker's listen would otherwise share the primary's socket.
  const socketServer = NodeSocketServer.layer({
    host: endpoint.listen,
    port: endpoint.port,
    exclusive: true,
    noDelay: true
  })
  const shardingConfig = Layer.effect(
    ShardingConfig.ShardingConfig,
    Effect.map(SocketServer, (server) =>
      ShardingConfig.ShardingConfig.of({
        ...ShardingConfig.defaults,
        ...shardingSettings(config),
        runnerAddress: Option.some(
          RunnerAddress.make(
            endpoint.advertised,
            server.address._tag === "UnixPathAddress" ? endpoint.port : server.address.port
          )
        )
      })
    )
  )
  const health = RunnerHealth.layerPing.pipe(Layer.provide(Runners.layerRpc), Layer.provide(layerClientProtocol))
  return SocketRunner.layer.pipe(
    Layer.provide([layerClientProtocol, health]),
    Layer.provideMerge(SqlMessageStorage.layerStorage({})),
    Layer.provide(runnerStorage),
    Layer.provideMerge(shardingConfig),
    Layer.provideMerge(socketServer),
    Layer.provide([RpcSerialization.layerSchemaBinary(), NodeCrypto.layerDigest])
  )
}

/**
 * The cluster of `config`: the embedded single runner, or (with PostgreSQL) a socket runner.
 * `workerIndex` is this process's place among `server.workers` processes (0 for the first).
 */
export const layer = (config: AppConfig.AppConfigValue, workerIndex = 0) =>
  Option.isSome(config.storage.postgresUrl) ? layerSocket(config, workerIndex) : layerSingle(config)
